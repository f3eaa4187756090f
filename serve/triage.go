package serve

import (
	"errors"

	"emitop/ui"
)

// errTriage answers an SSH command the server does not know.
var errTriage = errors.New("emitop: unknown command; open the dashboard with `ssh -t HOST`, " +
	"on an account with `ssh -t HOST account NAME`, on a document with `ssh -t HOST doc NUMBER`")

// triageOf reads where the operator asked the dashboard to open from the session's
// command: none, "account NAME" or "doc NUMBER" (`ssh -p 2222 HOST -t account sv-main`,
// the command an alert's triage annotation gives).
func triageOf(command []string) (ui.Triage, error) {
	switch {
	case len(command) == 0:
		return ui.Triage{}, nil
	case len(command) == 2 && command[0] == "account":
		return ui.Triage{Account: command[1]}, nil
	case len(command) == 2 && command[0] == "doc":
		return ui.Triage{Doc: command[1]}, nil
	}
	return ui.Triage{}, errTriage
}
