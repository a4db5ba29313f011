/** What every command handler receives besides its options: where to write. Only the CLI writes to the console. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

export interface CommandContext {
  io: CliIo;
}
