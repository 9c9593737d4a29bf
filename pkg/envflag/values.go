package envflag

import (
	"errors"
	"strconv"
	"time"
)

// durationValue replaces the flag package's own, whose only complaint is
// "parse error": it says what is wrong and what a valid value looks like.
// (Its help shows the flag's type as "value", unless the usage names it
// in backquotes.)

type durationValue time.Duration

func (d *durationValue) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err == nil {
		*d = durationValue(v)
		return nil
	}
	if _, nerr := strconv.ParseFloat(s, 64); nerr == nil {
		return errors.New("a duration needs a unit, such as 30s or 2m")
	}
	return errors.New("not a duration: write a number and a unit, such as 30s, 2m or 1h30m")
}

func (d *durationValue) String() string { return time.Duration(*d).String() }
func (d *durationValue) Get() any       { return time.Duration(*d) }

// DurationVar defines a duration flag whose errors give an example of a
// valid value.
func (s *Set) DurationVar(p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	s.Var((*durationValue)(p), name, usage)
}

// Duration is DurationVar returning a pointer to the value.
func (s *Set) Duration(name string, value time.Duration, usage string) *time.Duration {
	p := new(time.Duration)
	s.DurationVar(p, name, value, usage)
	return p
}
