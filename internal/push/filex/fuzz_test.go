package filex

import "testing"

// The receipt is outside input: no panic, and every receipt has a key.
func FuzzParseReceipt(f *testing.F) {
	f.Add([]byte(`{"batch_id":"b1","receipts":[{"key":"a:1","status":"accepted"},{"key":"b:1","status":"rejected","code":"E101"}]}`), "b1")
	f.Add([]byte(`{"receipts":[],"error":{"code":"E300"}}`), "b1")
	f.Add([]byte("\xef\xbb\xbf{\"receipts\":[{\"key\":1,\"status\":true}]}"), "x")
	f.Add([]byte("{\"receipts\":[{\"key\":\"a\",\"message\":\"\xc7\xeb\"}]}"), "x")
	c := Config{Dir: "/x"}
	c.SetDefaults()
	f.Fuzz(func(t *testing.T, b []byte, batchID string) {
		rs, err := parseReceipt(b, batchID, c.Receipt)
		if err != nil && rs != nil {
			t.Fatal("receipts with an error")
		}
		for _, r := range rs {
			if r.Key == "" {
				t.Fatal("receipt without a key")
			}
		}
	})
}
