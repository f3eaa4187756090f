package report

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"emitop/model"
)

// JSON writes the report as one JSON object, times in UTC.
func (r Report) JSON(w io.Writer) error {
	r.Since, r.Until = r.Since.UTC(), r.Until.UTC()
	if r.Accounts == nil {
		r.Accounts = []Account{}
	}
	if r.Busiest == nil {
		r.Busiest = []Hour{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// code shows a value that came from outside emitop (a provider's number or code, a window
// name, an operator's reason) as an inline code span: sanitized to one line and cut, its
// backticks replaced, so no markup in it can format, link or mention anything.
func code(s string, width int) string {
	return "`" + strings.ReplaceAll(model.Line(s, width), "`", "'") + "`"
}

// Markdown writes the report for a chat message or a ticket, times in loc.
func (r Report) Markdown(w io.Writer, loc *time.Location) error {
	b := &strings.Builder{}
	at := func(t time.Time) string { return t.In(loc).Format("Mon 15:04") }
	fmt.Fprintf(b, "# emitop shift report\n\n%s to %s (%s)\n", at(r.Since), at(r.Until), r.Until.In(loc).Format("2006-01-02 MST"))
	if len(r.Accounts) == 0 {
		b.WriteString("\nNo account in the history.\n")
	}
	for _, a := range r.Accounts {
		fmt.Fprintf(b, "\n## %s", model.Line(a.Name, 60))
		if a.Provider != "" {
			fmt.Fprintf(b, " (%s)", model.Line(a.Provider, 20))
		}
		b.WriteString("\n\n")
		if a.Quiet() {
			b.WriteString("Nothing happened; nothing is open.\n")
			continue
		}
		if len(a.Health) > 0 {
			parts := make([]string, len(a.Health))
			for i, h := range a.Health {
				parts[i] = fmt.Sprintf("%s %s → %s", at(h.At), h.From, h.To)
				if h.Class != "" {
					parts[i] += " (" + string(h.Class)
					if h.Code != "" {
						parts[i] += " " + code(h.Code, 40)
					}
					parts[i] += ")"
				}
			}
			fmt.Fprintf(b, "- **Health:** %s%s\n", earlier(a.HealthTotal-a.changesListed), strings.Join(parts, " · "))
		}
		if len(a.WindowRuns) > 0 {
			var parts []string
			for i, run := range a.WindowRuns {
				name := code(cmp.Or(run.Window, model.UnnamedWindow), 32)
				first := i == 0 || a.WindowRuns[i-1].Window != run.Window
				if first && run.Runs > 1 {
					listed := 0
					for _, r := range a.WindowRuns[i:] {
						if r.Window == run.Window {
							listed++
						}
					}
					name += fmt.Sprintf(" ran out %d times:", run.Runs)
					if listed < run.Runs {
						name = strings.TrimSuffix(name, ":") + fmt.Sprintf(", the last %d:", listed)
					}
				} else if !first {
					name = ""
				}
				span := "since " + at(run.From)
				if run.Until != nil {
					span = fmt.Sprintf("%s–%s (%s)", at(run.From), at(*run.Until), run.Until.Sub(run.From).Round(time.Second))
				}
				parts = append(parts, strings.TrimSpace(name+" "+span))
			}
			fmt.Fprintf(b, "- **Windows that ran out:** %s\n", strings.Join(parts, " · "))
		}
		if len(a.Rejections) > 0 {
			total := 0
			parts := make([]string, len(a.Rejections))
			for i, rj := range a.Rejections {
				total += rj.Documents
				parts[i] = fmt.Sprintf("%s %d", classVerdict(rj.Class, rj.Verdict), rj.Documents)
			}
			fmt.Fprintf(b, "- **Rejected:** %d documents: %s\n", total, strings.Join(parts, " · "))
		}
		if len(a.Retries) > 0 {
			fmt.Fprintf(b, "%s\n", strings.TrimSpace("- **Retries:** "+earlier(a.RetriesTotal-len(a.Retries))))
			for _, rt := range a.Retries {
				verb := "retried"
				if rt.Forced {
					verb = "forced"
				}
				fmt.Fprintf(b, "  - %s %s %s %s", at(rt.At), model.Line(rt.Operator, 30), verb, code(rt.Document, 40))
				if rt.Forced {
					fmt.Fprintf(b, " (reason: %s)", code(rt.Reason, 120))
				}
				fmt.Fprintf(b, ": %s\n", code(rt.Outcome, 120))
			}
		}
		if len(a.Open) > 0 {
			parts := make([]string, len(a.Open))
			for i, o := range a.Open {
				numbers := make([]string, len(o.Numbers))
				for j, n := range o.Numbers {
					numbers[j] = code(n, 40)
				}
				more := ""
				if o.Documents > len(o.Numbers) {
					more = ", …"
				}
				parts[i] = fmt.Sprintf("%s %d (%s%s)", classVerdict(o.Class, o.Verdict), o.Documents, strings.Join(numbers, ", "), more)
			}
			fmt.Fprintf(b, "- **Still open:** %s\n", strings.Join(parts, " · "))
		}
	}
	if len(r.Busiest) > 0 {
		b.WriteString("\n## Busiest hours\n\n")
		for _, h := range r.Busiest {
			fmt.Fprintf(b, "- %s–%s: %d document events, %d rejections, %d requests\n", at(h.Start),
				h.Start.Add(time.Hour).In(loc).Format("15:04"), h.Events, h.Rejections, h.Requests)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// earlier says how many rows a list leaves out before the ones it shows, "(12 earlier not
// listed) ", nothing when none.
func earlier(n int) string {
	if n <= 0 {
		return ""
	}
	return fmt.Sprintf("(%d earlier not listed) ", n)
}

// classVerdict is "class/verdict", "unknown" for a part the history does not have.
func classVerdict(c model.Class, v model.Verdict) string {
	cs, vs := string(c), string(v)
	if !c.Valid() {
		cs = "unknown"
	}
	if !v.Valid() {
		vs = "unknown"
	}
	return cs + "/" + vs
}
