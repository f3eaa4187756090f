package sandbox

import "maps"

// AccountStats are one account's counters.
type AccountStats struct {
	Requests           int            `json:"requests"`            // client requests that reached the account
	RateLimited        int            `json:"rate_limited"`        // 429s served
	Emissions          int            `json:"emissions"`           // documents emitted (stamp, emitir, submit, validate, invoice PATCH)
	DuplicateEmissions int            `json:"duplicate_emissions"` // emissions of documents already accepted
	Deleted            int            `json:"deleted"`             // documents deleted at a client's request (factus)
	Production         int            `json:"production"`          // requests another client spent from the budget
	Attempts           map[string]int `json:"attempts"`            // emissions per document id
}

// Stats are one provider's counters: totals and per account.
type Stats struct {
	Provider           string                  `json:"provider"`
	Requests           int                     `json:"requests"`
	RateLimited        int                     `json:"rate_limited"`
	Emissions          int                     `json:"emissions"`
	DuplicateEmissions int                     `json:"duplicate_emissions"`
	Accounts           map[string]AccountStats `json:"accounts"`
}

// Stats returns the provider's counters (served as JSON at /<provider>/__sandbox/stats).
// Requests refused before an account is known (bad credentials) are not counted.
func (s *Sandbox) Stats(provider string) Stats {
	st := Stats{Provider: provider, Accounts: map[string]AccountStats{}}
	for _, a := range s.order {
		if a.d.name != provider {
			continue
		}
		as := s.AccountStats(a.name)
		st.Accounts[a.name] = as
		st.Requests += as.Requests
		st.RateLimited += as.RateLimited
		st.Emissions += as.Emissions
		st.DuplicateEmissions += as.DuplicateEmissions
	}
	return st
}

// AccountStats returns one account's counters; zero for an unknown account.
func (s *Sandbox) AccountStats(account string) AccountStats {
	a := s.byName[account]
	if a == nil {
		return AccountStats{Attempts: map[string]int{}}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.stats
	st.Attempts = maps.Clone(a.stats.Attempts)
	return st
}
