package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"emitop/internal/tooltest"
	"emitop/model"
	"emitop/sandbox"
)

// freePort returns a loopback address nothing listens on (prometheus takes no port 0).
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// polling is `emitop poll --metrics-listen` running for a test.
type polling struct {
	url  string      // of its metrics
	log  *syncBuffer // its stderr
	db   string
	stop func() // SIGTERM, and wait for it to exit
}

// startPoll runs `emitop poll --metrics-listen 127.0.0.1:0` on cfg until the test ends or
// stop, and reads the metrics URL it logs.
func startPoll(t *testing.T, cfg string) polling {
	t.Helper()
	p := polling{log: &syncBuffer{}, db: filepath.Join(t.TempDir(), "emitop.db")}
	cmd := exec.Command(emitopBinary(t), "poll", "--metrics-listen", "127.0.0.1:0", "--config", cfg, "--db", p.db)
	cmd.Stderr = p.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	p.stop = func() {
		once.Do(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		})
	}
	t.Cleanup(p.stop)
	served := regexp.MustCompile(`msg="serving metrics" url=(\S+)`)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := served.FindStringSubmatch(p.log.String()); m != nil {
			p.url = m[1]
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("emitop poll did not serve metrics in 20 s:\n%s", p.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// prometheus is a real Prometheus server started for one test.
type prometheus struct {
	t    *testing.T
	base string
}

// startPrometheus runs Prometheus scraping target every second, with emitop's shipped
// alert rules evaluated every second, until the test ends.
func startPrometheus(t *testing.T, target string) *prometheus {
	t.Helper()
	bin := tooltest.Need(t, "prometheus", "prometheus")
	rules, err := filepath.Abs(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: emitop
    static_configs:
      - targets: [%q]
`, rules, target)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	cmd := exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr)
	var log syncBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	p := &prometheus{t: t, base: "http://" + addr}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready in 30 s:\n%s", log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// api GETs a Prometheus HTTP API path and decodes its data.
func (p *prometheus) api(path string, data any) {
	p.t.Helper()
	resp, err := http.Get(p.base + path)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Status != "success" {
		p.t.Fatalf("%s: %v %s", path, err, out.Error)
	}
	if err := json.Unmarshal(out.Data, data); err != nil {
		p.t.Fatalf("%s: %v", path, err)
	}
}

// sample is one series of an instant query.
type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (p *prometheus) query(q string) []sample {
	p.t.Helper()
	var data struct {
		Result []sample `json:"result"`
	}
	p.api("/api/v1/query?query="+url.QueryEscape(q), &data)
	return data.Result
}

// alert is one alert as /api/v1/alerts lists it.
type alert struct {
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"`
}

func (p *prometheus) alerts() []alert {
	p.t.Helper()
	var data struct {
		Alerts []alert `json:"alerts"`
	}
	p.api("/api/v1/alerts", &data)
	return data.Alerts
}

// eventually retries check every 200 ms for up to d; it returns whether check passed.
func eventually(d time.Duration, check func() bool) bool {
	deadline := time.Now().Add(d)
	for !check() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
	return true
}

// windowsByProvider are the windows each provider's accounts have, with their limits, as
// the providers state them (PROVIDERS.md): alegra one unnamed of 150, sv-dte's three named
// throttlers, certifactu one of 100, factus Laravel's 80 (its v2 docs, limite-de-request), alforse
// none (no headers).
var windowsByProvider = map[string]map[string]string{
	"alegra":     {model.UnnamedWindow: "150"},
	"sv-dte":     {"short": "3", "medium": "20", "long": "100"},
	"certifactu": {model.UnnamedWindow: "100"},
	"factus":     {model.UnnamedWindow: "80"},
	"alforse":    {},
}

// TestPrometheusScrapesPoll runs a real Prometheus against `emitop poll` polling the
// sandbox, with emitop's shipped rules: every account's windows reach Prometheus with the
// providers' limits, a real scrape passes promtool's lint, and an account the sandbox takes
// down turns EmitopAccountDown pending for that account alone.
func TestPrometheusScrapesPoll(t *testing.T) {
	tooltest.Need(t, "prometheus", "prometheus")
	sb, cfg := sandboxConfig(t, sandbox.Options{Scenario: "calm", Seed: 4, NoFaults: true}, "500ms")
	poll := startPoll(t, cfg)
	metricsURL, pollLog := poll.url, poll.log

	resp, err := http.Get(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	scrape, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	lint := exec.Command(tooltest.Need(t, "promtool", "prometheus"), "check", "metrics")
	lint.Stdin = strings.NewReader(string(scrape))
	if out, err := lint.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics on a real scrape: %v\n%s", err, out)
	}

	u, _ := url.Parse(metricsURL)
	prom := startPrometheus(t, u.Host)
	want := map[string]string{} // account/window → limit
	for _, a := range sb.Accounts() {
		for w, limit := range windowsByProvider[a.Provider] {
			want[a.Name+"/"+w] = limit
		}
	}
	var got map[string]string
	if !eventually(30*time.Second, func() bool {
		got = map[string]string{}
		for _, s := range prom.query(`emitop_window_limit{job="emitop"}`) {
			got[s.Metric["account"]+"/"+s.Metric["window"]] = fmt.Sprint(s.Value[1])
		}
		return fmt.Sprint(got) == fmt.Sprint(want)
	}) {
		t.Fatalf("windows in Prometheus:\n%v\nwant:\n%v\nemitop's log:\n%s", got, want, pollLog.String())
	}
	for _, q := range []string{`emitop_account_health{health="up"} == 1`, `emitop_window_remaining`} {
		if n := len(prom.query(q)); n == 0 {
			t.Errorf("%s: no series", q)
		}
	}

	const down = "cf-sevilla"
	sb.SetFaults(down, sandbox.Faults{Maintenance: []sandbox.Span{{From: 0, Until: 24 * time.Hour}}})
	var alerts []alert
	if !eventually(60*time.Second, func() bool {
		alerts = prom.alerts()
		for _, a := range alerts {
			if a.Labels["alertname"] == "EmitopAccountDown" && a.Labels["account"] == down && a.State == "pending" {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no pending EmitopAccountDown for %s in 60 s; alerts: %+v\nemitop's log:\n%s", down, alerts, pollLog.String())
	}
	for _, a := range alerts {
		if a.Labels["alertname"] == "EmitopAccountDown" && a.Labels["account"] != down {
			t.Errorf("EmitopAccountDown for %s, which is up", a.Labels["account"])
		}
	}
}
