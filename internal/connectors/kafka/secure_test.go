package kafka_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/panjin-gov/syncd/internal/connectors"
	"github.com/panjin-gov/syncd/internal/connectors/kafka"
	"github.com/panjin-gov/syncd/internal/httpauth"
	"github.com/panjin-gov/syncd/internal/httpauth/httpauthtest"
)

// The TLS and SASL options against a broker that requires them: mutual
// TLS with a private CA, and SASL PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512;
// a wrong password fails as a permanent error.
func TestTLSAndSASLAgainstASecuredBroker(t *testing.T) {
	pki := httpauthtest.NewPKI(t)
	for _, mech := range []struct {
		name, kfakeName string
		client          func(user, pass string) (sasl.Mechanism, error)
	}{
		{kafka.MechanismPlain, "PLAIN", func(u, p string) (sasl.Mechanism, error) { return plain.Mechanism{Username: u, Password: p}, nil }},
		{kafka.MechanismSCRAMSHA256, "SCRAM-SHA-256", func(u, p string) (sasl.Mechanism, error) { return scram.Mechanism(scram.SHA256, u, p) }},
		{kafka.MechanismSCRAMSHA512, "SCRAM-SHA-512", func(u, p string) (sasl.Mechanism, error) { return scram.Mechanism(scram.SHA512, u, p) }},
	} {
		t.Run(mech.name, func(t *testing.T) {
			const user, pass = "syncd", "test-only-password"
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(2),
				kfake.TLS(pki.Server), kfake.EnableSASL(), kfake.Superuser(mech.kfakeName, user, pass))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			brokers := c.ListenAddrs()

			// Produce over the same secured connection.
			clientTLS, err := httpauth.TLS{CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile}.ClientConfig()
			if err != nil {
				t.Fatal(err)
			}
			m, err := mech.client(user, pass)
			if err != nil {
				t.Fatal(err)
			}
			w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), Topic: "court.secure", AllowAutoTopicCreation: true,
				BatchTimeout: time.Millisecond, RequiredAcks: kafkago.RequireAll,
				Transport: &kafkago.Transport{TLS: clientTLS, SASL: m}}
			var msgs []kafkago.Message
			for i := range 20 {
				v, _ := json.Marshal(map[string]any{"event_id": fmt.Sprintf("s-%02d", i), "case_no": fmt.Sprintf("（2026）辽11执%d号", i)})
				msgs = append(msgs, kafkago.Message{Key: []byte(fmt.Sprint(i)), Value: v})
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			for try := 0; ; try++ {
				if err = w.WriteMessages(ctx, msgs...); err == nil || try == 50 {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			w.Close()
			if err != nil {
				t.Fatalf("produce: %v", err)
			}

			cfg := kafka.Config{Brokers: brokers, Topic: "court.secure", GroupID: "syncd-secure", KeyField: "event_id",
				MaxWait: 200 * time.Millisecond,
				TLS:     &kafka.TLSConfig{CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile},
				SASL:    &kafka.SASLConfig{Mechanism: mech.name, Username: user, PasswordEnv: "UNUSED"}}
			src, err := kafka.New("court", cfg, pass)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close(context.Background())
			seen := map[string]bool{}
			cur := ""
			for deadline := time.Now().Add(30 * time.Second); len(seen) < 20 && time.Now().Before(deadline); {
				b, err := src.Fetch(ctx, cur, 50)
				if err != nil {
					continue
				}
				for _, r := range b.Records {
					seen[r.Key] = true
				}
				if err := src.Commit(ctx, b); err != nil {
					t.Fatalf("commit over TLS+SASL: %v", err)
				}
				cur = b.Next
			}
			if len(seen) != 20 {
				t.Fatalf("read %d of 20 messages over TLS+SASL", len(seen))
			}

			// The wrong password is refused.
			bad, err := kafka.New("court", cfg, "wrong")
			if err != nil {
				t.Fatal(err)
			}
			defer bad.Close(context.Background())
			fctx, fcancel := context.WithTimeout(ctx, 10*time.Second)
			defer fcancel()
			if _, err := bad.Fetch(fctx, "", 10); !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), "credentials") {
				t.Fatalf("wrong password: %v, want a permanent error naming the credentials", err)
			}

			// A broker certificate from an unknown CA is refused too.
			untrusted := cfg
			untrusted.TLS = &kafka.TLSConfig{CAFile: httpauthtest.NewPKI(t).CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile}
			other, err := kafka.New("court", untrusted, pass)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close(context.Background())
			if _, err := other.Fetch(fctx, "", 10); !errors.Is(err, connectors.ErrPermanent) {
				t.Fatalf("untrusted broker certificate: %v, want a permanent error", err)
			}
		})
	}
}
