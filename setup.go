package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"emitop/config"
	"emitop/model"
	"emitop/store"
)

// errNoConfig says that no configuration file exists where emitop looks for one.
var errNoConfig = errors.New("no configuration file")

// loadConfig finds and loads the configuration (--config, else $EMITOP_CONFIG, else the
// XDG path). A path named by flag or variable must exist; the default one may be missing,
// which is errNoConfig. A configuration with problems is printed to stderr, one line per
// problem, and becomes exit status 2.
func loadConfig(flagPath string, stderr io.Writer) (*config.Config, error) {
	path, found := config.Locate(flagPath)
	named := flagPath != "" || os.Getenv("EMITOP_CONFIG") != ""
	if !found && !named {
		return nil, fmt.Errorf("%w at %s", errNoConfig, path)
	}
	cfg, err := config.Load(path)
	var ce *config.Error
	if errors.As(err, &ce) {
		fmt.Fprintln(stderr, model.Sanitize(ce.Error(), true)) // values from the file, one problem a line
		return nil, exitError{2}
	}
	if err != nil {
		return nil, usagef("%v", err)
	}
	return cfg, nil
}

// openStore opens the history at dbFlag when given, else at the configuration's path.
func openStore(ctx context.Context, cfg *config.Config, dbFlag string) (*store.Store, error) {
	path := cfg.Store.Path
	if dbFlag != "" {
		path = dbFlag
	}
	return store.Open(ctx, path)
}
