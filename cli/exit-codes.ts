/** Exit codes every command shares (../shared/DESIGN.md). CI pipelines branch on these. */
export const ExitCode = {
  Ok: 0,
  AssertionFailed: 1,
  BadUsage: 2,
  Unreachable: 3,
  Internal: 4,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** An error meant for the user: printed as its message alone, no stack, with the given exit code. */
export class UserError extends Error {
  readonly exitCode: ExitCodeValue;

  constructor(message: string, exitCode: ExitCodeValue = ExitCode.BadUsage) {
    super(message);
    this.name = 'UserError';
    this.exitCode = exitCode;
  }
}
