package poller

import (
	"regexp"
	"strings"

	"emitop/model"
)

// Colombia's tax authority, the DIAN, answers every electronic invoice with rule results:
// "Regla: FAD06, Rechazo: …" rejects the document, "Regla: FAJ44b, Notificación: …" only
// informs. The dialects of the providers in front of the DIAN quote those texts (in a
// bill's errors, in an invoice's stamp warnings) and read them here.

// dianRule is one DIAN validation result quoted in a text.
type dianRule struct {
	id        string
	rejection bool // the text says "Rechazo"; otherwise it is a notification
}

// dianRulePattern finds "Regla: FAD06" or "Regla 90": a rule id holds a digit, so that
// "reglas de validación" names no rule.
var dianRulePattern = regexp.MustCompile(`(?i)\bregla(?:\s*:\s*|\s+)([a-z]*[0-9][a-z0-9]*)\b`)

// dianFinding picks the code among DIAN rules: rule 90 (a duplicate) first, then the
// first rejection, then, when no field error speaks for the response, the first
// notification. A rejection makes the class rejected; a notification leaves it open.
func dianFinding(rules []dianRule, hasFields bool) finding {
	for _, r := range rules {
		if r.rejection && r.id == "90" {
			return finding{code: r.id, class: model.ClassDuplicate}
		}
	}
	for _, r := range rules {
		if r.rejection {
			return finding{code: r.id, class: model.ClassRejected}
		}
	}
	if len(rules) > 0 && !hasFields {
		return finding{code: rules[0].id}
	}
	return finding{}
}

// dianRules finds every DIAN rule quoted in texts, in order. A text quoting several rules
// is split at each "Regla".
func dianRules(texts []string) []dianRule {
	var rules []dianRule
	for _, t := range texts {
		locs := dianRulePattern.FindAllStringSubmatchIndex(t, -1)
		for i, loc := range locs {
			end := len(t)
			if i+1 < len(locs) {
				end = locs[i+1][0]
			}
			rules = append(rules, dianRule{
				id:        t[loc[2]:loc[3]],
				rejection: strings.Contains(strings.ToLower(t[loc[0]:end]), "rechazo"),
			})
		}
	}
	return rules
}
