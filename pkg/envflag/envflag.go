// Package envflag gives command-line flags an environment variable each as
// fallback: the seed configured YourCI through the environment, operators
// script flags, and both must say the same thing. A flag given on the
// command line wins over its variable, which wins over the default.
package envflag

import (
	"errors"
	"flag"
	"fmt"
	"sort"
	"strings"
)

// Set is a flag.FlagSet whose flags may name an environment variable.
type Set struct {
	*flag.FlagSet
	env map[string]string // flag name → variable
}

// New returns an empty Set that reports errors instead of exiting.
func New(name string) *Set {
	return &Set{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), env: map[string]string{}}
}

// Env binds the already defined flag name to the environment variable key
// and adds the variable to the flag's usage text.
func (s *Set) Env(name, key string) {
	f := s.Lookup(name)
	if f == nil {
		panic("envflag: no flag " + name)
	}
	s.env[name] = key
	f.Usage += " ($" + key + ")"
}

// Parse applies the environment read through getenv, then args. Every bad
// value is reported at once, naming the variable and the value it came
// from: YCI_GRACE="30": a duration needs a unit, such as 30s or 2m.
func (s *Set) Parse(args []string, getenv func(string) string) error {
	names := make([]string, 0, len(s.env))
	for name := range s.env {
		names = append(names, name)
	}
	sort.Strings(names)
	var errs []error
	for _, name := range names {
		key := s.env[name]
		if v := getenv(key); v != "" {
			if err := s.Set(name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", key, v, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := s.FlagSet.Parse(args); err != nil {
		return err
	}
	if s.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(s.Args(), " "))
	}
	return nil
}
