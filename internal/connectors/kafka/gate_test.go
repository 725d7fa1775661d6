package kafka_test

import (
	"net"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// gate is the broker's listener with a switch in it: Cut drops every open
// connection and resets new ones at once (the client sees its requests fail
// with EOF or a reset, as when a broker crashes or a firewall drops the
// link); Restore lets connections through again. It sits inside kfake (via
// kfake.ListenFn) rather than in front of it as a proxy because kfake
// advertises its listener's own address in metadata: a proxy on the
// bootstrap address alone would be bypassed after the first request.
type gate struct {
	net.Listener

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
}

// Accept never fails while cut: kfake stops listening for good on an
// Accept error, and a restored broker must take connections again.
func (g *gate) Accept() (net.Conn, error) {
	for {
		c, err := g.Listener.Accept()
		if err != nil {
			return nil, err
		}
		g.mu.Lock()
		if g.cut {
			g.mu.Unlock()
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // a reset, not a polite FIN
			}
			c.Close()
			continue
		}
		gc := &gateConn{Conn: c, g: g}
		g.conns[gc] = struct{}{}
		g.mu.Unlock()
		return gc, nil
	}
}

// Cut drops the broker off the network until Restore.
func (g *gate) Cut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cut = true
	for c := range g.conns {
		c.(*gateConn).Conn.Close()
		delete(g.conns, c)
	}
}

// Restore reconnects the broker.
func (g *gate) Restore() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cut = false
}

type gateConn struct {
	net.Conn
	g *gate
}

func (c *gateConn) Close() error {
	c.g.mu.Lock()
	delete(c.g.conns, c)
	c.g.mu.Unlock()
	return c.Conn.Close()
}

// gatedBroker starts a one-node kfake cluster behind a gate.
func gatedBroker(t testing.TB, opts ...kfake.Opt) ([]string, *gate) {
	t.Helper()
	g := &gate{conns: map[net.Conn]struct{}{}}
	listen := func(network, addr string) (net.Listener, error) {
		ln, err := net.Listen(network, addr)
		if err != nil {
			return nil, err
		}
		g.Listener = ln
		return g, nil
	}
	opts = append([]kfake.Opt{kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(partitions), kfake.ListenFn(listen)}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs(), g
}
