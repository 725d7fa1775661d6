package main

import (
	"github.com/panjin-gov/syncd/internal/config"
	"github.com/panjin-gov/syncd/internal/connectors"
	"github.com/panjin-gov/syncd/internal/connectors/filedrop"
	"github.com/panjin-gov/syncd/internal/connectors/httpsrc"
	"github.com/panjin-gov/syncd/internal/connectors/kafka"
	"github.com/panjin-gov/syncd/internal/connectors/sqlsrc"
	"github.com/panjin-gov/syncd/internal/daemon"
	"github.com/panjin-gov/syncd/internal/push"
	"github.com/panjin-gov/syncd/internal/push/dbx"
	"github.com/panjin-gov/syncd/internal/push/filex"
	"github.com/panjin-gov/syncd/internal/push/httpjson"
)

// registry lists every source type, target type and platform layout this
// binary knows. Adding a connector is one line here plus its package.
func registry() daemon.Registry {
	return daemon.Registry{
		Sources: map[string]daemon.SourceFactory{
			"http": func(name string, c config.Source) (connectors.Source, error) {
				return httpsrc.New(name, *c.HTTP, config.Secret)
			},
			"sql": func(name string, c config.Source) (connectors.Source, error) {
				return sqlsrc.New(name, *c.SQL, config.Secret(c.SQL.DSNEnv))
			},
			"filedrop": func(name string, c config.Source) (connectors.Source, error) {
				return filedrop.New(name, *c.FileDrop)
			},
			"kafka": func(name string, c config.Source) (connectors.Source, error) {
				password := ""
				if c.Kafka.SASL != nil {
					password = config.Secret(c.Kafka.SASL.PasswordEnv)
				}
				return kafka.New(name, *c.Kafka, password)
			},
		},
		Targets: map[string]daemon.TargetFactory{
			"http": func(_ string, c config.Target) (push.Target, error) {
				return httpjson.New(*c.HTTP, config.Secret)
			},
			"file": func(_ string, c config.Target) (push.Target, error) {
				return filex.New(*c.File)
			},
			"database": func(_ string, c config.Target) (push.Target, error) {
				return dbx.New(*c.Database, config.Secret(c.Database.DSNEnv))
			},
		},
	}
}
