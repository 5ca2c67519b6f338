package main

import (
	"errors"
	"io"
)

func runProfile(_ []string, _, _ io.Writer) error { return errors.New("profile: not built yet") }
