package httpauth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLS says how a client checks the server and proves itself. The zero value
// uses the system roots and no client certificate.
type TLS struct {
	CAFile   string `mapstructure:"ca_file"`   // PEM roots to trust instead of the system's
	CertFile string `mapstructure:"cert_file"` // PEM client certificate (mutual TLS)
	KeyFile  string `mapstructure:"key_file"`  // its PEM private key
	// ServerName overrides the name checked in the server's certificate
	// (a platform reached by IP through a government network).
	ServerName string `mapstructure:"server_name"`
	// InsecureSkipVerify turns off the server check. For a test bench only.
	InsecureSkipVerify bool `mapstructure:"insecure_skip_verify"`
}

// Validate checks the config without I/O.
func (t TLS) Validate() error {
	if (t.CertFile == "") != (t.KeyFile == "") {
		return errors.New("tls: cert_file and key_file go together")
	}
	return nil
}

// ClientConfig reads the files and returns the client TLS config, TLS 1.2 at
// least (GB/T 39443 platforms commonly still speak 1.2; nothing older).
func (t TLS) ClientConfig() (*tls.Config, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	c := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // opt-in, documented as test-only
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file: %s holds no PEM certificate", t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file/key_file: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
