package httpjson_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/panjin-gov/syncd/internal/httpauth"
	"github.com/panjin-gov/syncd/internal/httpauth/httpauthtest"
	"github.com/panjin-gov/syncd/internal/push"
	"github.com/panjin-gov/syncd/internal/push/httpjson"
	"github.com/panjin-gov/syncd/internal/record"
	"github.com/panjin-gov/syncd/internal/sandbox"
	"github.com/panjin-gov/syncd/internal/store"
)

func newTarget(t *testing.T, cfg httpjson.Config, env map[string]string) *httpjson.Target {
	t.Helper()
	tg, err := httpjson.New(cfg, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close(context.Background()) })
	return tg
}

func TestXMLBodyAndXMLReceipts(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var b struct {
			ID      string `xml:"id,attr"`
			Records []struct {
				Op       string `xml:"op,attr"`
				Key      string `xml:"key,attr"`
				RecordID string `xml:"record_id,attr"`
				Version  string `xml:"version,attr"`
				Fields   []struct {
					XMLName xml.Name
					Value   string `xml:",chardata"`
				} `xml:",any"`
			} `xml:"record"`
		}
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/xml") || !strings.HasPrefix(string(body), "<?xml") {
			http.Error(w, "want XML", 415)
			return
		}
		if err := xml.Unmarshal(body, &b); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		r0, r1 := b.Records[0], b.Records[1]
		if b.ID != "b1" || len(b.Records) != 2 || r0.Op != "add" || r0.Key != "abc:3" || r0.RecordID != "abc" || r0.Version != "3" ||
			len(r0.Fields) != 3 || r0.Fields[0].XMLName.Local != "CF_NR_FK" || r0.Fields[0].Value != "1.5" ||
			r0.Fields[1].XMLName.Local != "CF_WSH" || r0.Fields[1].Value != "盘纪处〔2026〕1号 <&>" ||
			r1.Op != "withdraw" || len(r1.Fields) != 0 {
			http.Error(w, "unexpected layout: "+string(body), 400)
			return
		}
		w.Header().Set("Content-Type", "application/xml")
		io.WriteString(w, `<?xml version="1.0"?><answer batch_id="b1"><receipts>
			<receipt key="abc:3" status="accepted"/>
			<receipt key="abc:3x" status="rejected" code="E101" message="缺少必填字段"/>
		</receipts></answer>`)
	}))
	defer srv.Close()
	it := items()
	it[0].Data["CF_NR_FK"] = 1.5
	it[0].Data["CF_WSH"] = "盘纪处〔2026〕1号 <&>"
	it[0].Data["CF_EMPTY"] = nil // left out
	it[0].Data["CF_YXQ"] = "2027-01-01"
	tg := newTarget(t, httpjson.Config{URL: srv.URL, Format: "xml"}, nil)
	rs, err := tg.Send(context.Background(), "b1", it)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || !rs[0].Accepted || rs[1].Accepted || rs[1].Code != "E101" || rs[1].Message != "缺少必填字段" {
		t.Fatalf("receipts %+v", rs)
	}
}

// The shape of DESIGN's platform profile example, by config alone.
func TestCustomReceiptShapeJSON(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"code":"0","data":{"results":[
			{"ywid":"abc:3","zt":1,"cwdm":null,"cwxx":""},
			{"ywid":"abc:3x","zt":"0","cwdm":1001,"cwxx":"必填项为空"},
			{"zt":"1"}]}}`)
	}))
	defer srv.Close()
	tg := newTarget(t, httpjson.Config{URL: srv.URL, Receipt: httpjson.ReceiptShape{
		ItemsPath: "data.results", KeyField: "ywid", StatusField: "zt", AcceptedValues: []string{"1"},
		CodeField: "cwdm", MessageField: "cwxx",
	}}, nil)
	rs, err := tg.Send(context.Background(), "b1", items())
	if err != nil {
		t.Fatal(err)
	}
	// The keyless third result cannot be matched and is left out.
	if len(rs) != 2 || !rs[0].Accepted || rs[0].Code != "" || rs[1].Accepted || rs[1].Code != "1001" || rs[1].Message != "必填项为空" {
		t.Fatalf("receipts %+v", rs)
	}
}

// XML receipts in child elements, in GBK as some platforms still answer.
func TestCustomReceiptShapeXMLInGBK(t *testing.T) {
	doc := `<?xml version="1.0" encoding="GBK"?><response><code>0</code><data><results>
		<result><ywid>abc:3x</ywid><zt>0</zt><cwdm>1001</cwdm><cwxx>必填项为空</cwxx></result>
	</results></data></response>`
	gbk, err := simplifiedchinese.GBK.NewEncoder().String(doc)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/xml; charset=GBK")
		io.WriteString(w, gbk)
	}))
	defer srv.Close()
	tg := newTarget(t, httpjson.Config{URL: srv.URL, Format: "xml", Receipt: httpjson.ReceiptShape{
		ItemsPath: "data.results", KeyField: "ywid", StatusField: "zt", AcceptedValues: []string{"1"},
		CodeField: "cwdm", MessageField: "cwxx",
	}}, nil)
	rs, err := tg.Send(context.Background(), "b1", items())
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Key != "abc:3x" || rs[0].Accepted || rs[0].Code != "1001" || rs[0].Message != "必填项为空" {
		t.Fatalf("receipts %+v", rs)
	}
}

// A 200 without receipts where the profile says they are (an error
// envelope, a wrong items_path) is transient and shows the answer.
func TestAnswerWithoutReceiptsIsTransient(t *testing.T) {
	for _, body := range []string{`{"code":"E500","msg":"签名错误"}`, `<answer><error>签名错误</error></answer>`} {
		tg := target(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) })
		_, err := tg.Send(context.Background(), "b", items())
		if err == nil || errors.Is(err, push.ErrPermanent) || !strings.Contains(err.Error(), "签名错误") {
			t.Errorf("%s: err %v", body, err)
		}
	}
}

// syncd reaches the national sandbox with config only: app-key signing
// (SHA-256 and SM3), JSON and XML, and the national receipt shape.
func TestNationalSandboxByConfig(t *testing.T) {
	for _, c := range []struct {
		alg, format string
		opts        []sandbox.NationalOption
	}{
		{"hmac-sha256", "json", nil},
		{"hmac-sm3", "json", []sandbox.NationalOption{sandbox.NationalSM3()}},
		{"hmac-sm3", "xml", []sandbox.NationalOption{sandbox.NationalSM3()}},
	} {
		t.Run(c.alg+"/"+c.format, func(t *testing.T) {
			nat := sandbox.NewNational("pj-syncd", "nat-secret", c.opts...)
			srv := httptest.NewServer(nat.Handler())
			defer srv.Close()
			tg := newTarget(t, httpjson.Config{
				URL: srv.URL + "/api/v1/report", Format: c.format,
				Config: httpauth.Config{Timeout: 5 * time.Second, Auth: httpauth.Auth{
					Type: "appkey", AppKey: "pj-syncd", AppSecretEnv: "SYNCD_NATIONAL_SECRET", Algorithm: c.alg}},
				Receipt: httpjson.ReceiptShape{ItemsPath: "data.results", KeyField: "ywid", StatusField: "zt",
					AcceptedValues: []string{"1"}, CodeField: "cwdm", MessageField: "cwxx"},
			}, map[string]string{"SYNCD_NATIONAL_SECRET": "nat-secret"})
			good := map[string]any{
				"CF_WSH": "盘环罚〔2026〕7号", "CF_XDR_MC": "盘锦市某公司", "CF_XDR_LB": "法人及非法人组织",
				"CF_XDR_SHXYM": "91350100M000100Y43", "CF_CFLB": "罚款", "CF_NR_FK": "0.5", "CF_JDRQ": "2026-03-05",
				"CF_CFJG": "盘锦市生态环境局", "CF_SJLY": "盘锦市生态环境局",
			}
			bad := map[string]any{"CF_WSH": "x"}
			its := []push.Item{
				{Key: push.Key("n1", 1), Op: store.OpAdd, Record: &record.Record{RecordID: "n1", Version: 1}, Data: good},
				{Key: push.Key("n2", 1), Op: store.OpAdd, Record: &record.Record{RecordID: "n2", Version: 1}, Data: bad},
			}
			for round := 0; round < 2; round++ { // the second round is all duplicates or the same rejections
				rs, err := tg.Send(context.Background(), "nb-1", its)
				if err != nil {
					t.Fatal(err)
				}
				if len(rs) != 2 || !rs[0].Accepted || rs[1].Accepted || rs[1].Code != sandbox.NationalCodeMissingField {
					t.Fatalf("round %d: receipts %+v", round, rs)
				}
			}
			h := nat.Holdings()
			if len(h) != 1 || h["n1"].Data["CF_XDR_MC"] != "盘锦市某公司" {
				t.Fatalf("holdings %+v", h)
			}
			if st := nat.Stats(); st.Duplicates != 1 || st.Unauthorized != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestMutualTLSAndBasicAuth(t *testing.T) {
	pki := httpauthtest.NewPKI(t)
	srv := pki.StartTLS(t, httpauthtest.RequireBasic("syncd", "pw", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"receipts":[{"key":"abc:3","status":"accepted"}]}`)
	})))
	cfg := httpjson.Config{URL: srv.URL, Config: httpauth.Config{
		TLS:  httpauth.TLS{CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile},
		Auth: httpauth.Auth{Type: "basic", Username: "syncd", PasswordEnv: "PW"},
	}}
	rs, err := newTarget(t, cfg, map[string]string{"PW": "pw"}).Send(context.Background(), "b", items())
	if err != nil || len(rs) != 1 || !rs[0].Accepted {
		t.Fatalf("receipts %+v, %v", rs, err)
	}
	cfg.TLS.CertFile, cfg.TLS.KeyFile = "", ""
	if _, err := newTarget(t, cfg, map[string]string{"PW": "pw"}).Send(context.Background(), "b", items()); err == nil || errors.Is(err, push.ErrPermanent) {
		t.Fatalf("without a client certificate: %v (want a transient error)", err)
	}
}

func TestRateLimit(t *testing.T) {
	tg := newTarget(t, httpjson.Config{URL: serveReceipts(t), Config: httpauth.Config{RateLimit: 20, Burst: 1}}, nil)
	start := time.Now()
	for i := 0; i < 4; i++ {
		if _, err := tg.Send(context.Background(), "b", items()); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took < 120*time.Millisecond { // 3 waits of 50ms
		t.Fatalf("4 batches at 20/s in %v", took)
	}
}

func serveReceipts(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"receipts":[]}`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestConfig(t *testing.T) {
	in := map[string]any{
		"url": "https://xy.example/api", "timeout": "10s", "format": "xml", "rate_limit": 5, "burst": 5,
		"auth":    map[string]any{"type": "appkey", "app_key": "k", "app_secret_env": "S", "algorithm": "hmac-sm3"},
		"tls":     map[string]any{"ca_file": "ca.pem"},
		"receipt": map[string]any{"items_path": "data.results", "key_field": "ywid", "status_field": "zt", "accepted_values": []string{"1", "2"}, "code_field": "cwdm", "message_field": "cwxx"},
	}
	var c httpjson.Config
	dec, _ := mapstructure.NewDecoder(&mapstructure.DecoderConfig{Result: &c, ErrorUnused: true, DecodeHook: mapstructure.StringToTimeDurationHookFunc()})
	if err := dec.Decode(in); err != nil {
		t.Fatal(err)
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil || c.Timeout != 10*time.Second || c.Receipt.AcceptedValues[1] != "2" || c.Auth.Algorithm != "hmac-sm3" {
		t.Fatalf("%+v %v", c, err)
	}
	var d httpjson.Config
	d.URL = "http://x"
	d.SetDefaults()
	if d.Format != "json" || d.Receipt.ItemsPath != "receipts" || d.Receipt.KeyField != "key" || d.Receipt.StatusField != "status" ||
		d.Receipt.AcceptedValues[0] != "accepted" || d.Receipt.CodeField != "code" || d.Receipt.MessageField != "message" {
		t.Fatalf("defaults %+v", d)
	}
	for _, bad := range []httpjson.Config{
		{URL: "http://x", Format: "csv"},
		{URL: "http://x", Receipt: httpjson.ReceiptShape{ItemsPath: "data..results"}},
		{URL: "http://x", TokenEnv: "T", Config: httpauth.Config{Auth: httpauth.Auth{Type: "bearer", TokenEnv: "T"}}},
		{URL: "http://x", Config: httpauth.Config{Auth: httpauth.Auth{Type: "appkey", AppKey: "k"}}},
	} {
		bad.SetDefaults()
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v validated", bad)
		}
	}
}

// A platform whose interface document names the request parts its own way
// (pch, sjlb, ywid, czlx I/U/D, fields beside them) is reached by config.
func TestCustomRequestEnvelope(t *testing.T) {
	var got map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewDecoder(r.Body).Decode(&got)
		recs, _ := got["sjlb"].([]any)
		var out []map[string]any
		for _, x := range recs {
			m := x.(map[string]any)
			out = append(out, map[string]any{"ywid": m["ywid"], "zt": "1"})
		}
		json.NewEncoder(w).Encode(map[string]any{"jg": out})
	}))
	defer srv.Close()
	cfg := httpjson.Config{URL: srv.URL,
		Request: httpjson.Envelope{BatchIDField: "pch", RecordsField: "sjlb", KeyField: "ywid", OpField: "czlx",
			RecordIDField: "-", VersionField: "-", DataField: ".", OpValues: map[string]string{"add": "I", "withdraw": "D"}},
		Receipt: push.ReceiptShape{ItemsPath: "jg", KeyField: "ywid", StatusField: "zt", AcceptedValues: []string{"1"}},
	}
	tg, err := httpjson.New(cfg, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	rs, err := tg.Send(context.Background(), "b7", items())
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || !rs[0].Accepted || !rs[1].Accepted {
		t.Fatalf("receipts %+v", rs)
	}
	recs := got["sjlb"].([]any)
	first, second := recs[0].(map[string]any), recs[1].(map[string]any)
	if got["pch"] != "b7" || first["ywid"] != "abc:3" || first["czlx"] != "I" || first["CF_WSH"] != "盘纪处〔2026〕1号" ||
		second["czlx"] != "D" || first["record_id"] != nil || first["version"] != nil || first["data"] != nil {
		t.Fatalf("request body %v", got)
	}
	bad := httpjson.Config{URL: srv.URL, Request: httpjson.Envelope{KeyField: "-", OpValues: map[string]string{"delete": "D"}}}
	bad.SetDefaults()
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "request.op_values.delete") || !strings.Contains(err.Error(), "cannot be left out") {
		t.Fatalf("bad envelope: %v", err)
	}
}
