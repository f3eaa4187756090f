package sandbox

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// sortedKeys lists a map's keys in order, so that a config reads the same every time.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ConfigTOML is an emitop config (TOML) for every account of the sandbox, credentials
// included, with the base URLs Start gave them: what `emitop sandbox --config-out`
// writes and what the demo and the tests load.
func (s *Sandbox) ConfigTOML() string {
	var b strings.Builder
	b.WriteString("# emitop config for the sandbox (emitop sandbox --config-out); the credentials are the sandbox's.\n")
	for _, a := range s.Accounts() {
		fmt.Fprintf(&b, "\n[[account]]\nname = %s\nprovider = %s\nbase_url = %s\n",
			strconv.Quote(a.Name), strconv.Quote(a.Provider), strconv.Quote(a.BaseURL))
		for _, k := range sortedKeys(a.Settings) {
			fmt.Fprintf(&b, "%s = %s\n", k, strconv.Quote(a.Settings[k]))
		}
		for _, k := range sortedKeys(a.Credentials) {
			fmt.Fprintf(&b, "%s = %s\n", k, strconv.Quote(a.Credentials[k]))
		}
		b.WriteString("timeout = \"30s\"\npoll_interval = \"5s\"\nreserve = 0.1\n")
	}
	return b.String()
}
