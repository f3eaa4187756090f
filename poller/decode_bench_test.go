package poller

import (
	"net/http"
	"testing"
)

// BenchmarkDecode decodes a typical error response: an Alegra 400 to a stamp, with the
// code in the body and rate-limit headers of two families.
func BenchmarkDecode(b *testing.B) {
	r := Response{
		Status: 400,
		Method: "POST",
		Header: http.Header{
			"Content-Type":           {"application/json; charset=utf-8"},
			"Date":                   {"Thu, 16 Jan 2025 10:30:00 GMT"},
			"X-Rate-Limit-Limit":     {"150"},
			"X-Rate-Limit-Remaining": {"149"},
			"X-Rate-Limit-Reset":     {"42"},
			"X-Ratelimit-Limit":      {"100"},
			"X-Ratelimit-Remaining":  {"95"},
			"X-Ratelimit-Reset":      {"1737023460"},
		},
		Body: []byte(`{"error":{"message":"Error en la emisión: AEP6016 - El correo del cliente es obligatorio",` +
			`"code":3061,"details":{"client.email":"required"}}}`),
		Received: rlNow,
	}
	b.ReportAllocs()
	for b.Loop() {
		p, err := Decode("alegra", r)
		if err != nil || p.Code != "AEP6016" {
			b.Fatalf("%v %+v", err, p)
		}
	}
}
