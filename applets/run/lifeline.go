package run

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/journal"
	"github.com/rootswap/rootswap/internal/lifeline"
	"github.com/rootswap/rootswap/internal/swap"
	"github.com/rootswap/rootswap/rescue"
)

// startLifeline starts the engine's own SSH server: keys and sshd's
// policy resolved once as plan resolved them, host key in memory, the
// rescue shell in-process for every session. Its fingerprint goes to the
// log and the journal before the first step.
func startLifeline(ctx context.Context, env *cli.Env, lc swap.Lifeline, j *journal.Journal, jpath string) (*lifeline.Server, error) {
	pol, err := lifeline.Resolve(ctx, lifeline.KeySource{Keys: lc.KeysFile, Client: lc.Client})
	if err != nil {
		return nil, err
	}
	for _, n := range pol.Notes {
		fmt.Fprintf(env.Stdout, "lifeline: %s\n", n)
	}
	prompt := func() string {
		if st, err := swap.LoadStatus(env.ProcRoot, jpath); err == nil && !st.Deadline.IsZero() {
			return fmt.Sprintf("lifeline %s# ", time.Until(st.Deadline).Round(time.Second))
		}
		return "lifeline# "
	}
	srv, err := lifeline.Start(ctx, lifeline.Options{
		Listen: lc.Listen, Port: lc.Port, AuthorizedKeys: pol.Keys, From: pol.From, NotFrom: pol.NotFrom,
		Env: env, Log: env.Stdout,
		Shell: func(ctx context.Context, e *cli.Env, args []string) error {
			environ := append(os.Environ(), "PATH=/usr/sbin:/usr/bin:/sbin:/bin")
			if t := e.Getenv("TERM"); t != "" {
				environ = append(environ, "TERM="+t)
			}
			return rescue.Run(ctx, e, rescue.Options{Prompt: prompt, Environ: environ, Interactive: len(args) == 0}, args)
		},
	})
	if err != nil {
		return nil, err
	}
	var addrs []string
	for _, a := range srv.Addrs() {
		addrs = append(addrs, a.String())
	}
	msg := fmt.Sprintf("lifeline SSH on %v, host key %s: ssh -p %d root@HOST gives the rescue shell", addrs, srv.Fingerprint(), lc.Port)
	fmt.Fprintln(env.Stdout, msg)
	j.Add(journal.Record{Kind: journal.KindNote, Describe: msg, Data: map[string]string{"lifeline_fingerprint": srv.Fingerprint()}})
	return srv, nil
}
