package httpjson_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/panjin-gov/syncd/internal/httpauth"
	"github.com/panjin-gov/syncd/internal/push"
	"github.com/panjin-gov/syncd/internal/push/httpjson"
	"github.com/panjin-gov/syncd/internal/record"
	"github.com/panjin-gov/syncd/internal/store"
)

func items() []push.Item {
	r := &record.Record{RecordID: "abc", Version: 3}
	return []push.Item{
		{Key: push.Key("abc", 3), Op: store.OpAdd, Record: r, Data: map[string]any{"CF_WSH": "盘纪处〔2026〕1号"}},
		{Key: push.Key("abc", 3) + "x", Op: store.OpWithdraw, Record: r},
	}
}

func target(t *testing.T, h http.HandlerFunc) *httpjson.Target {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	tg, err := httpjson.New(httpjson.Config{URL: srv.URL, Config: httpauth.Config{Timeout: time.Second}, TokenEnv: "TOK"},
		func(k string) string { return map[string]string{"TOK": "tok"}[k] })
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func TestReceiptsAndWireFormat(t *testing.T) {
	tg := target(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(401)
			return
		}
		var body struct {
			BatchID string `json:"batch_id"`
			Records []struct {
				Key, Op, RecordID string
				Version           uint64
				Data              map[string]any
			} `json:"records"`
		}
		json.NewDecoder(r.Body).Decode(&body)
		if body.BatchID != "b1" || len(body.Records) != 2 || body.Records[0].Data["CF_WSH"] != "盘纪处〔2026〕1号" || body.Records[1].Op != "withdraw" {
			w.WriteHeader(400)
			return
		}
		w.Write([]byte(`{"receipts":[{"key":"abc:3","status":"accepted"},{"key":"abc:3x","status":"rejected","code":"E101","message":"缺少必填字段"}]}`))
	})
	rs, err := tg.Send(context.Background(), "b1", items())
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || !rs[0].Accepted || rs[1].Accepted || rs[1].Code != "E101" || rs[1].Message != "缺少必填字段" {
		t.Fatalf("receipts %+v", rs)
	}
}

func TestTransportErrorsAreClassified(t *testing.T) {
	for _, c := range []struct {
		status    int
		retry     string
		permanent bool
	}{{500, "", false}, {503, "3", false}, {429, "", false}, {400, "", true}, {401, "", true}} {
		tg := target(t, func(w http.ResponseWriter, r *http.Request) {
			if c.retry != "" {
				w.Header().Set("Retry-After", c.retry)
			}
			w.WriteHeader(c.status)
		})
		_, err := tg.Send(context.Background(), "b", items())
		if err == nil || errors.Is(err, push.ErrPermanent) != c.permanent {
			t.Errorf("status %d: err %v, permanent want %v", c.status, err, c.permanent)
		}
		var ra *push.RetryAfterError
		if c.retry != "" && (!errors.As(err, &ra) || ra.After != 3*time.Second) {
			t.Errorf("status %d: Retry-After not carried: %v", c.status, err)
		}
	}
	// A 200 whose body is not JSON says nothing about what was applied: transient.
	tg := target(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>")) })
	if _, err := tg.Send(context.Background(), "b", items()); err == nil || errors.Is(err, push.ErrPermanent) {
		t.Fatalf("unreadable 200: %v", err)
	}
}
