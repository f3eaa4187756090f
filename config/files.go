package config

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrNotPrivate is the error of ReadPrivate for a file others may write.
var ErrNotPrivate = errors.New("writable by others")

// ReadPrivate reads a file that decides who may do what (the configuration, an operator's
// keys_file), refusing it when anyone but its owner may write it (group or others): they
// could add an account or a key. why says what such a writer could do, for the message,
// which names the file and the fix. The mode is read from the file opened, so it is the
// mode of what is read.
func ReadPrivate(path, why string) ([]byte, os.FileMode, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	mode := fi.Mode().Perm()
	if mode&0o022 != 0 {
		return nil, mode, fmt.Errorf("%s is %w (mode %04o): %s; run chmod 600 %s", path, ErrNotPrivate, mode, why, path)
	}
	data, err := io.ReadAll(f)
	return data, mode, err
}
