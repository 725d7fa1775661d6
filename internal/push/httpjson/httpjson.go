// Package httpjson delivers record batches to a platform's HTTP service
// interface (GB/T 39443 "service" style) as JSON or XML and reads
// per-record receipts from its answer.
//
// format: json (default)
//
//	POST {url}  Content-Type: application/json; charset=utf-8
//	{"batch_id": "...", "records": [{"key": "<record_id>:<version>", "op": "add|update|withdraw",
//	                                 "record_id": "...", "version": 3, "data": {"CF_...": ...}}]}
//
// format: xml
//
//	POST {url}  Content-Type: application/xml; charset=utf-8
//	<?xml version="1.0" encoding="UTF-8"?>
//	<batch id="...">
//	  <record op="add" key="<record_id>:<version>" record_id="..." version="3">
//	    <CF_WSH>...</CF_WSH><CF_XDR_MC>...</CF_XDR_MC>...      one element per data field, sorted by name
//	  </record>
//	  <record op="withdraw" key="..." record_id="..." version="4"></record>
//	</batch>
//
// Values are written as text (numbers and booleans in their JSON form,
// nested values as JSON); fields whose value is null are left out.
//
// The answer is read as XML if it starts with "<", else as JSON, whatever
// was sent. The receipt block of the config says where the receipts are
// and what their fields are called; the defaults read
//
//	{"batch_id": "...", "receipts": [{"key": "...", "status": "accepted|rejected", "code": "", "message": ""}]}
//
// receipt.items_path is a dotted path from the top of the answer: the JSON
// object, or the XML root element (whose own name is not part of the path);
// "." is the answer itself (a JSON list of receipts).
// An XML element becomes an object of its attributes and child elements
// (repeated children a list, text-only ones a string), and a path ending at
// a wrapper element with one kind of child takes those children as the
// items, so both of these are read with items_path "receipts":
//
//	<answer><receipts><receipt key="..." status="accepted"/>...</receipts></answer>
//	<answer><receipts><receipt><key>...</key><status>accepted</status></receipt>...</receipts></answer>
//
// and a platform answering {"data":{"results":[{"ywid":..,"zt":"1","cwdm":..,"cwxx":..}]}}
// is read with items_path data.results, key_field ywid, status_field zt,
// accepted_values ["1"], code_field cwdm, message_field cwxx. Scalar values
// are compared as text, so "zt": 1 and "zt": "1" are alike.
//
// Authentication (bearer, basic, app-key signing), TLS and the request rate
// limit come from httpauth.
package httpjson

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/text/encoding/ianaindex"

	"github.com/panjin-gov/syncd/internal/backoff"
	"github.com/panjin-gov/syncd/internal/httpauth"
	"github.com/panjin-gov/syncd/internal/push"
)

// Wire formats.
const (
	FormatJSON = "json"
	FormatXML  = "xml"
)

// Config is the HTTP target's part of a target's config.
type Config struct {
	// Timeout, rate limit, TLS and auth; their keys sit beside url.
	httpauth.Config `mapstructure:",squash"`

	URL     string       `mapstructure:"url"`
	Format  string       `mapstructure:"format"` // json (default) or xml
	Receipt ReceiptShape `mapstructure:"receipt"`
	// Request names the parts of the request body, for platforms whose
	// interface document fixes other names.
	Request Envelope `mapstructure:"request"`
	// TokenEnv is the older way to name the bearer token's environment
	// variable, kept working: auth.type bearer with this auth.token_env,
	// except that an unset variable means no auth, as it always did.
	TokenEnv string `mapstructure:"token_env"`
}

// Envelope names the parts of a request:
//
//	{"<batch_id_field>": "...", "<records_field>": [
//	  {"<key_field>": "id:3", "<op_field>": "<op value>", "<record_id_field>": "id",
//	   "<version_field>": 3, "<data_field>": {<profile fields>}}]}
//
// data_field "." puts the profile's fields beside the others; a field name
// "-" leaves that part out. In XML the batch id is the root's id attribute
// and the others are attributes of each record element.
type Envelope struct {
	BatchIDField  string            `mapstructure:"batch_id_field"`  // default batch_id
	RecordsField  string            `mapstructure:"records_field"`   // default records
	KeyField      string            `mapstructure:"key_field"`       // default key
	OpField       string            `mapstructure:"op_field"`        // default op
	RecordIDField string            `mapstructure:"record_id_field"` // default record_id
	VersionField  string            `mapstructure:"version_field"`   // default version
	DataField     string            `mapstructure:"data_field"`      // default data
	OpValues      map[string]string `mapstructure:"op_values"`       // add/update/withdraw → the platform's words; default the same
}

func (e *Envelope) setDefaults() {
	for _, f := range []struct {
		p   *string
		def string
	}{{&e.BatchIDField, "batch_id"}, {&e.RecordsField, "records"}, {&e.KeyField, "key"}, {&e.OpField, "op"},
		{&e.RecordIDField, "record_id"}, {&e.VersionField, "version"}, {&e.DataField, "data"}} {
		if *f.p == "" {
			*f.p = f.def
		}
	}
}

func (e *Envelope) validate() []error {
	var errs []error
	for _, op := range slices.Sorted(maps.Keys(e.OpValues)) {
		if op != "add" && op != "update" && op != "withdraw" {
			errs = append(errs, fmt.Errorf("request.op_values.%s: not an op (add, update, withdraw)", op))
		}
	}
	if e.KeyField == "-" || e.OpField == "-" || e.RecordsField == "-" || e.RecordsField == "." {
		errs = append(errs, errors.New("request: key_field, op_field and records_field cannot be left out"))
	}
	return errs
}

func (e *Envelope) op(op string) string {
	if v := e.OpValues[op]; v != "" {
		return v
	}
	return op
}

// ReceiptShape is where the answer keeps its receipts (push.ReceiptShape).
type ReceiptShape = push.ReceiptShape

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	c.Config.SetDefaults()
	def(&c.Format, FormatJSON)
	c.Receipt.SetDefaults()
	c.Request.setDefaults()
}

// Validate checks the config without I/O.
func (c *Config) Validate() error {
	var errs []error
	if err := httpauth.ValidateURL(c.URL); err != nil {
		errs = append(errs, err)
	}
	switch c.Format {
	case "", FormatJSON, FormatXML:
	default:
		errs = append(errs, fmt.Errorf("format: %q is not json or xml", c.Format))
	}
	errs = append(errs, c.Request.validate()...)
	for _, seg := range strings.Split(c.Receipt.ItemsPath, ".") {
		if c.Receipt.ItemsPath != "" && c.Receipt.ItemsPath != "." && seg == "" {
			errs = append(errs, fmt.Errorf("receipt.items_path: %q has an empty segment", c.Receipt.ItemsPath))
			break
		}
	}
	if err := c.Config.ValidateLegacyToken(c.TokenEnv); err != nil {
		errs = append(errs, err)
	}
	if err := c.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Target is one platform's HTTP endpoint.
type Target struct {
	cfg    Config
	client *http.Client
}

var _ push.Target = (*Target)(nil)

// New makes a target. resolve turns the environment variable names in cfg
// (auth.*_env, token_env) into secrets; pass config.Secret. It reads the
// TLS files named in cfg.
func New(cfg Config, resolve func(envName string) string) (*Target, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	client, err := httpauth.Client(cfg.Config.WithLegacyToken(cfg.TokenEnv, resolve), resolve)
	if err != nil {
		return nil, err
	}
	return &Target{cfg: cfg, client: client}, nil
}

// Send posts one batch. 5xx, 429 and transport errors are transient; other
// non-200 answers are permanent (push.ErrPermanent).
func (t *Target) Send(ctx context.Context, batchID string, items []push.Item) ([]push.Receipt, error) {
	var (
		buf         []byte
		err         error
		contentType string
	)
	if t.cfg.Format == FormatXML {
		buf, err = encodeXML(&t.cfg.Request, batchID, items)
		contentType = "application/xml; charset=utf-8"
	} else {
		buf, err = encodeJSON(&t.cfg.Request, batchID, items)
		contentType = "application/json; charset=utf-8"
	}
	if err != nil {
		return nil, fmt.Errorf("encode batch %s: %w: %w", batchID, err, push.ErrPermanent)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.cfg.URL, bytes.NewReader(buf))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, push.ErrPermanent)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json, application/xml;q=0.9")
	req.Header.Set("Idempotency-Key", batchID)
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("POST batch %s: %w", batchID, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, fmt.Errorf("read answer to batch %s: %w", batchID, err)
	}
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("POST batch %s: %s: %s", batchID, resp.Status, snippet(raw))
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
			if d := backoff.ParseRetryAfter(resp.Header.Get("Retry-After")); d > 0 {
				return nil, &push.RetryAfterError{After: d, Err: err}
			}
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", err, push.ErrPermanent)
	}
	out, err := t.receipts(raw)
	if err != nil {
		// A 200 we cannot read tells us nothing about what was applied;
		// the batch is retried, which the idempotency keys make safe.
		return nil, fmt.Errorf("answer to batch %s: %w: %s", batchID, err, snippet(raw))
	}
	return out, nil
}

func encodeJSON(e *Envelope, batchID string, items []push.Item) ([]byte, error) {
	records := make([]map[string]any, len(items))
	for i, it := range items {
		r := make(map[string]any, len(it.Data)+4)
		if e.DataField == "." {
			for k, v := range it.Data {
				r[k] = v
			}
		} else if e.DataField != "-" && it.Data != nil {
			r[e.DataField] = it.Data
		}
		set := func(field string, v any) {
			if field != "-" {
				r[field] = v
			}
		}
		set(e.RecordIDField, it.Record.RecordID)
		set(e.VersionField, it.Record.Version)
		set(e.KeyField, it.Key)
		set(e.OpField, e.op(string(it.Op)))
		records[i] = r
	}
	body := map[string]any{e.RecordsField: records}
	if e.BatchIDField != "-" {
		body[e.BatchIDField] = batchID
	}
	return json.Marshal(body)
}

func encodeXML(e *Envelope, batchID string, items []push.Item) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(&b)
	attr := func(name, v string) xml.Attr { return xml.Attr{Name: xml.Name{Local: name}, Value: v} }
	batch := xml.StartElement{Name: xml.Name{Local: "batch"}, Attr: []xml.Attr{attr("id", batchID)}}
	if err := enc.EncodeToken(batch); err != nil {
		return nil, err
	}
	for _, it := range items {
		rec := xml.StartElement{Name: xml.Name{Local: "record"}}
		for _, a := range [][2]string{{e.OpField, e.op(string(it.Op))}, {e.KeyField, it.Key},
			{e.RecordIDField, it.Record.RecordID}, {e.VersionField, strconv.FormatUint(it.Record.Version, 10)}} {
			if a[0] != "-" {
				rec.Attr = append(rec.Attr, attr(a[0], a[1]))
			}
		}
		if err := enc.EncodeToken(rec); err != nil {
			return nil, err
		}
		names := make([]string, 0, len(it.Data))
		for k, v := range it.Data {
			if v != nil {
				names = append(names, k)
			}
		}
		slices.Sort(names)
		for _, k := range names {
			if !xmlName(k) {
				return nil, fmt.Errorf("record %s: field %q is not an XML element name", it.Key, k)
			}
			text, err := textOf(it.Data[k])
			if err != nil {
				return nil, fmt.Errorf("record %s: field %s: %w", it.Key, k, err)
			}
			el := xml.StartElement{Name: xml.Name{Local: k}}
			if err := enc.EncodeToken(el); err != nil {
				return nil, err
			}
			if err := enc.EncodeToken(xml.CharData(text)); err != nil {
				return nil, err
			}
			if err := enc.EncodeToken(el.End()); err != nil {
				return nil, err
			}
		}
		if err := enc.EncodeToken(rec.End()); err != nil {
			return nil, err
		}
	}
	if err := enc.EncodeToken(batch.End()); err != nil {
		return nil, err
	}
	if err := enc.Flush(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// xmlName reports whether s is a plain XML element name (no namespace
// prefix); field codes such as CF_XDR_MC are.
func xmlName(s string) bool {
	if s == "" || strings.HasPrefix(strings.ToLower(s), "xml") {
		return false
	}
	for i, r := range s {
		letter := r == '_' || (r >= 'A' && r <= 'Z') || (r >= 'a' && r <= 'z') || r > 0x7f
		if i == 0 && !letter {
			return false
		}
		if !letter && !(r >= '0' && r <= '9') && r != '-' && r != '.' {
			return false
		}
	}
	return true
}

// textOf writes a field value as text: strings as they are, numbers and
// booleans in their JSON form, anything else as JSON.
func textOf(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case fmt.Stringer:
		return x.String(), nil // json.Number, decimal types
	}
	b, err := json.Marshal(v)
	return string(b), err
}

// receipts finds and reads the receipts in an answer.
func (t *Target) receipts(raw []byte) ([]push.Receipt, error) {
	doc, err := decodeAnswer(raw)
	if err != nil {
		return nil, err
	}
	return t.cfg.Receipt.Parse(doc)
}

// decodeAnswer reads a JSON or XML answer into maps, lists and strings.
func decodeAnswer(raw []byte) (any, error) {
	trimmed := bytes.TrimLeft(raw, " \t\r\n\ufeff")
	if len(trimmed) > 0 && trimmed[0] == '<' {
		doc, err := decodeXML(trimmed)
		if err != nil {
			return nil, fmt.Errorf("not XML: %w", err)
		}
		return doc, nil
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	return doc, nil
}

// decodeXML turns an XML document into the value of its root element: an
// element with neither attributes nor child elements is its text; any
// other is a map of attributes and children (a repeated child a list, its
// text, if any, under "#text"). Non-UTF-8 documents (GBK, GB18030, ...)
// are decoded by their declared encoding.
func decodeXML(raw []byte) (any, error) {
	dec := xml.NewDecoder(bytes.NewReader(raw))
	dec.CharsetReader = func(label string, in io.Reader) (io.Reader, error) {
		e, err := ianaindex.IANA.Encoding(label)
		if err != nil || e == nil {
			return nil, fmt.Errorf("unsupported encoding %q", label)
		}
		return e.NewDecoder().Reader(in), nil
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		if start, ok := tok.(xml.StartElement); ok {
			return xmlElement(dec, start, 0)
		}
	}
}

func xmlElement(dec *xml.Decoder, start xml.StartElement, depth int) (any, error) {
	if depth > 64 {
		return nil, errors.New("XML nested deeper than 64")
	}
	m := map[string]any{}
	for _, a := range start.Attr {
		m[a.Name.Local] = a.Value
	}
	hasChildren := false
	var text strings.Builder
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		switch x := tok.(type) {
		case xml.StartElement:
			hasChildren = true
			v, err := xmlElement(dec, x, depth+1)
			if err != nil {
				return nil, err
			}
			name := x.Name.Local
			switch prev := m[name].(type) {
			case nil:
				m[name] = v
			case []any:
				m[name] = append(prev, v)
			default:
				m[name] = []any{prev, v}
			}
		case xml.CharData:
			text.Write(x)
		case xml.EndElement:
			s := strings.TrimSpace(text.String())
			if !hasChildren && len(start.Attr) == 0 {
				return s, nil
			}
			if s != "" {
				m["#text"] = s
			}
			return m, nil
		}
	}
}

// Close releases idle connections.
func (t *Target) Close(context.Context) error {
	t.client.CloseIdleConnections()
	return nil
}

func snippet(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}
