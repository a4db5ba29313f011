/**
 * Which reporter a run uses: `--json` asks for NDJSON; otherwise the dashboard on an interactive
 * terminal (stdout is a TTY, no `--no-dashboard`, not under CI, where a TTY may be emulated and redrawn
 * frames make unreadable logs); otherwise plain progress lines.
 */
export type ReporterKind = 'dashboard' | 'plain' | 'json';

export interface ReporterChoiceInput {
  /** process.stdout.isTTY */
  isTTY: boolean | undefined;
  json: boolean;
  noDashboard: boolean;
  env: Readonly<Record<string, string | undefined>>;
}

/** CI providers set CI (GitHub Actions, GitLab, CircleCI, Travis, Buildkite...); "false" and "0" mean not. */
function inCi(env: ReporterChoiceInput['env']): boolean {
  const ci = env['CI'];
  return ci !== undefined && ci !== '' && ci !== 'false' && ci !== '0';
}

export function chooseReporter(input: ReporterChoiceInput): ReporterKind {
  if (input.json) return 'json';
  if (input.isTTY === true && !input.noDashboard && !inCi(input.env)) return 'dashboard';
  return 'plain';
}
