package initsys

import (
	"context"
	"errors"
	"fmt"
)

// batcher is a service manager that takes several services in one
// transaction (systemd's `systemctl stop A B`): their stops and starts
// overlap instead of adding up, which is the writers' outage in a swap.
// handled is false when some service is not of the batchable kind; the
// caller then goes one by one.
type batcher interface {
	batch(ctx context.Context, verb string, svcs []Service) (handled bool, err error)
}

// StopAll stops svcs, in one transaction where the service manager takes
// one, else one after another in order. stopped lists those that are
// stopped when it returns: on an error, the ones before it, or after a
// failed transaction those found no longer running.
func StopAll(ctx context.Context, sys System, svcs []Service) (stopped []Service, err error) {
	if b, ok := sys.(batcher); ok && len(svcs) > 1 {
		handled, err := b.batch(ctx, "stop", svcs)
		if handled {
			if err == nil {
				return svcs, nil
			}
			for _, svc := range svcs {
				if up, rerr := sys.Running(ctx, svc); rerr == nil && !up {
					stopped = append(stopped, svc)
				}
			}
			return stopped, err
		}
	}
	for _, svc := range svcs {
		if err := sys.Stop(ctx, svc); err != nil {
			return stopped, fmt.Errorf("stop %s: %w", svc.Name, err)
		}
		stopped = append(stopped, svc)
	}
	return stopped, nil
}

// StartAll starts svcs, in one transaction where the service manager
// takes one (it orders them by their dependencies), else one after
// another in order. Every service is tried; the errors are joined.
func StartAll(ctx context.Context, sys System, svcs []Service) error {
	if b, ok := sys.(batcher); ok && len(svcs) > 1 {
		if handled, err := b.batch(ctx, "start", svcs); handled {
			return err
		}
	}
	var errs []error
	for _, svc := range svcs {
		if err := sys.Start(ctx, svc); err != nil {
			errs = append(errs, fmt.Errorf("start %s: %w", svc.Name, err))
		}
	}
	return errors.Join(errs...)
}

// batch runs one `systemctl VERB` on every unit and the sockets that
// start it, when all are plain units (no supervision tree, no runit or
// s6 service under a unit).
func (s *Systemd) batch(ctx context.Context, verb string, svcs []Service) (bool, error) {
	for _, svc := range svcs {
		if svc.Kind != ServiceUnit || svc.Tree.Kind != "" || s.cfg.supervisionKind(svc) != "" || checkRestartable(svc) != nil {
			return false, nil
		}
	}
	args := []string{verb}
	for _, svc := range svcs {
		units, err := s.unitsWithSockets(ctx, svc)
		if err != nil {
			return true, err
		}
		args = append(args, units...)
	}
	_, err := s.cfg.run(ctx, "systemctl", args...)
	if err != nil {
		err = fmt.Errorf("systemctl %s: %w", verb, err)
	}
	return true, err
}
