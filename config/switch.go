package config

import "fmt"

// Switch is a setting that is on, off, or decided by vigil (auto). In YAML
// it is true, false or auto.
type Switch string

// The values of a Switch.
const (
	SwitchAuto Switch = "auto"
	SwitchOn   Switch = "true"
	SwitchOff  Switch = "false"
)

// ParseSwitch parses auto, true or false.
func ParseSwitch(s string) (Switch, error) {
	switch v := Switch(s); v {
	case SwitchAuto, SwitchOn, SwitchOff:
		return v, nil
	}
	return "", fmt.Errorf("must be auto, true or false (got %q)", s)
}

// On resolves the switch: auto takes the value vigil worked out.
func (s Switch) On(auto bool) bool {
	switch s {
	case SwitchOn:
		return true
	case SwitchOff:
		return false
	}
	return auto
}

// MarshalYAML writes auto as a string and on/off as YAML booleans.
func (s Switch) MarshalYAML() (any, error) {
	switch s {
	case SwitchOn:
		return true, nil
	case SwitchOff:
		return false, nil
	}
	return string(s), nil
}
