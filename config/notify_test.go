package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestParseNotify(t *testing.T) {
	env := envOf(map[string]string{"HOOK": "https://hooks.example.com/T0/B0/s3cr3t-path", "TOK": "bearer-s3cr3t"})
	c, err := Parse([]byte(`
[[notify]]
name = "chat"
kind = "slack"
url = "${HOOK}"
events = ["health", "refused"]
repeat = "30m"
max_per_minute = 2
triage = "ssh -p 2222 ops.example.com"

[[notify]]
name = "pager"
kind = "webhook"
url = "http://127.0.0.1:9/hook"
token = "${TOK}"
`), env, testProviders)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Notify) != 2 {
		t.Fatalf("notify: %+v", c.Notify)
	}
	chat, pager := c.Notify[0], c.Notify[1]
	if chat.Kind != NotifySlack || chat.Secrets.Get("url") != "https://hooks.example.com/T0/B0/s3cr3t-path" ||
		chat.Repeat != 30*time.Minute || chat.MaxPerMinute != 2 || len(chat.Events) != 2 || chat.Triage != "ssh -p 2222 ops.example.com" {
		t.Errorf("chat: %+v", chat)
	}
	if pager.Secrets.Get("token") != "bearer-s3cr3t" || pager.Repeat != DefaultNotifyRepeat || pager.Timeout != DefaultNotifyTimeout ||
		pager.MaxPerMinute != DefaultNotifyMaxPerMinute || len(pager.Events) != len(NotifyEvents) || !strings.HasPrefix(pager.Triage, "ssh -p 2222 ") {
		t.Errorf("pager: %+v", pager)
	}
	for _, printed := range []string{fmt.Sprintf("%v", c.Notify), fmt.Sprintf("%+v", c.Notify), fmt.Sprintf("%#v", c.Notify)} {
		if strings.Contains(printed, "s3cr3t") {
			t.Errorf("a printed notify shows its secret: %s", printed)
		}
	}
}

func TestParseNotifyProblems(t *testing.T) {
	env := envOf(map[string]string{"BAD": "ftp://user:s3cr3t@example.com/x"})
	cases := []struct{ name, entry, want string }{
		{"no name", `kind = "slack"` + "\n" + `url = "https://h.example/x"`, "missing name"},
		{"no kind", `name = "a"` + "\n" + `url = "https://h.example/x"`, "missing kind"},
		{"bad kind", `name = "a"` + "\n" + `kind = "email"` + "\n" + `url = "https://h.example/x"`, `unknown kind "email"`},
		{"no url", `name = "a"` + "\n" + `kind = "slack"`, "missing url"},
		{"bad url", `name = "a"` + "\n" + `kind = "slack"` + "\n" + `url = "${BAD}"`, "url is not an http(s) URL"},
		{"unset var", `name = "a"` + "\n" + `kind = "slack"` + "\n" + `url = "${NOPE}"`, "NOPE is not set"},
		{"token on slack", `name = "a"` + "\n" + `kind = "slack"` + "\n" + `url = "https://h.example/x"` + "\n" + `token = "t"`, "token does not apply"},
		{"bad event", `name = "a"` + "\n" + `kind = "slack"` + "\n" + `url = "https://h.example/x"` + "\n" + `events = ["sms"]`, `unknown event "sms"`},
		{"rate", `name = "a"` + "\n" + `kind = "slack"` + "\n" + `url = "https://h.example/x"` + "\n" + `max_per_minute = 0`, "max_per_minute 0 is outside"},
		{"repeat", `name = "a"` + "\n" + `kind = "slack"` + "\n" + `url = "https://h.example/x"` + "\n" + `repeat = "often"`, "bad duration"},
		{"unknown key", `name = "a"` + "\n" + `kind = "slack"` + "\n" + `url = "https://h.example/x"` + "\n" + `channel = "#ops"`, `unknown key "notify.channel"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte("\n[[notify]]\n"+c.entry+"\n"), env, testProviders)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Fatalf("the error quotes the secret: %v", err)
			}
		})
	}
	_, err := Parse([]byte("[[notify]]\nname = \"a\"\nkind = \"slack\"\nurl = \"https://h.example/x\"\n[[notify]]\nname = \"a\"\nkind = \"slack\"\nurl = \"https://h.example/y\"\n"), env, testProviders)
	if err == nil || !strings.Contains(err.Error(), "5: notify \"a\": name already used") {
		t.Fatalf("duplicate name: %v", err)
	}
}
