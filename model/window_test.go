package model

import (
	"encoding/json"
	"testing"
	"time"
)

func TestWindowJSON(t *testing.T) {
	tests := []struct {
		name string
		w    Window
		want string
	}{
		{"unnamed, forecast to run out",
			Window{Limit: 150, Remaining: 143, Reset: 38 * time.Second, ExhaustsIn: 90*time.Second + 900*time.Millisecond},
			`{"name":"(unnamed)","limit":150,"remaining":143,"reset_seconds":38,"exhausts_in_seconds":90}`},
		{"named, holds",
			Window{Name: "short", Limit: 3, Remaining: 3, Reset: time.Second, ExhaustsIn: -1},
			`{"name":"short","limit":3,"remaining":3,"reset_seconds":1,"exhausts_in_seconds":null}`},
		{"nothing stated",
			Window{Name: "minute", Limit: Unknown, Remaining: Unknown, Reset: -1, ExhaustsIn: -1},
			`{"name":"minute","limit":null,"remaining":null,"reset_seconds":null,"exhausts_in_seconds":null}`},
		{"spent: out now",
			Window{Name: "long", Limit: 10, Remaining: 0, Reset: -1, ExhaustsIn: 0},
			`{"name":"long","limit":10,"remaining":0,"reset_seconds":null,"exhausts_in_seconds":0}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.w)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Fatalf("got  %s\nwant %s", b, tt.want)
			}
			var back Window
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			want := tt.w
			if want.HasReset() {
				want.Reset = time.Duration(CeilSeconds(want.Reset)) * time.Second
			}
			if !want.Holds() {
				want.ExhaustsIn = want.ExhaustsIn.Truncate(time.Second)
			}
			if back != want {
				t.Errorf("round trip: got %+v, want %+v", back, want)
			}
		})
	}
}

func TestWindowLabel(t *testing.T) {
	if got := (Window{}).Label(); got != UnnamedWindow {
		t.Errorf("unnamed window's label = %q", got)
	}
	if got := (Window{Name: "short"}).Label(); got != "short" {
		t.Errorf("named window's label = %q", got)
	}
}
