package serve

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"

	gossh "golang.org/x/crypto/ssh"

	"emitop/config"
)

// Identity is who a session belongs to: the operator its key was declared for and the
// key's SHA-256 fingerprint. It is decided from the key the client proved it holds.
type Identity struct {
	Name        string
	Role        string // config.RoleOperator or config.RoleViewer
	Fingerprint string // gossh.FingerprintSHA256 of the session's key
}

// ReadOnly reports whether the identity may only look: anything but an operator is.
func (id Identity) ReadOnly() bool { return id.Role != config.RoleOperator }

// harmlessOptions are authorized_keys options emitop satisfies by what it is (no forwarding,
// no shell, no rc file), so a line carrying them means what it says. Any other option
// (from=, command=, expiry-time=, cert-authority, ...) would restrict the key in a way
// emitop does not enforce: such a line is refused rather than silently widened.
var harmlessOptions = map[string]bool{
	"restrict":            true,
	"no-port-forwarding":  true,
	"no-agent-forwarding": true,
	"no-x11-forwarding":   true,
	"no-user-rc":          true,
}

// keyring maps every declared key (its wire encoding) to its operator.
type keyring struct {
	byKey map[string]Identity
}

// loadKeys reads every operator's inline keys and keys_file. One bad line, one option emitop
// cannot honour, or one key declared for two operators is an error naming where it is.
func loadKeys(ops []config.Operator) (*keyring, error) {
	kr := &keyring{byKey: map[string]Identity{}}
	for _, op := range ops {
		if op.Role != config.RoleOperator && op.Role != config.RoleViewer {
			return nil, fmt.Errorf("operator %q: unknown role %q (operator or viewer)", op.Name, op.Role)
		}
		for i, line := range op.Keys {
			where := fmt.Sprintf("operator %q (config line %d): keys[%d]", op.Name, op.Line, i)
			if err := kr.add(op, []byte(line), where); err != nil {
				return nil, err
			}
		}
		if op.KeysFile == "" {
			continue
		}
		data, _, err := config.ReadPrivate(op.KeysFile, fmt.Sprintf("anyone who can write it could log in as %s", op.Name))
		if err != nil {
			return nil, fmt.Errorf("operator %q: keys_file: %w", op.Name, err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 64<<10)
		for n := 1; sc.Scan(); n++ {
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 || line[0] == '#' {
				continue
			}
			where := fmt.Sprintf("%s:%d: operator %q", op.KeysFile, n, op.Name)
			if err := kr.add(op, line, where); err != nil {
				return nil, err
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("%s: operator %q: %w", op.KeysFile, op.Name, err)
		}
	}
	return kr, nil
}

// add parses one authorized_keys line for op; where names the line in errors.
func (kr *keyring) add(op config.Operator, line []byte, where string) error {
	key, _, opts, rest, err := gossh.ParseAuthorizedKey(line)
	if err != nil {
		return fmt.Errorf("%s: not an SSH public key: %w", where, err)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return fmt.Errorf("%s: one key per line", where)
	}
	for _, o := range opts {
		name, _, _ := strings.Cut(o, "=")
		if !harmlessOptions[strings.ToLower(name)] {
			return fmt.Errorf("%s: option %q is not supported: emitop cannot enforce it", where, name)
		}
	}
	id := Identity{Name: op.Name, Role: op.Role, Fingerprint: gossh.FingerprintSHA256(key)}
	k := string(key.Marshal())
	if prev, ok := kr.byKey[k]; ok && prev.Name != op.Name {
		return fmt.Errorf("%s: key %s is already declared for operator %q", where, id.Fingerprint, prev.Name)
	}
	kr.byKey[k] = id
	return nil
}

// lookup returns the identity of key; ok is false for a key nobody declared.
func (kr *keyring) lookup(key gossh.PublicKey) (Identity, bool) {
	if key == nil {
		return Identity{}, false
	}
	id, ok := kr.byKey[string(key.Marshal())]
	return id, ok
}
