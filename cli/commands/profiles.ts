/**
 * `mqtt-sim profiles`: the network presets with their parameters, as a table or (--json) as the
 * normalized profiles (milliseconds, bytes per second) that scenarios and `mqtt-sim proxy` use.
 */
import type { Argv, CommandModule } from 'yargs';
import { profilesTable } from '../../simulator/faults/describe.js';
import { presets } from '../../simulator/faults/profile.js';
import type { CommandContext } from '../context.js';

export interface ProfilesArgs {
  json?: boolean;
}

export function profilesCommandBuilder(yargs: Argv): Argv<ProfilesArgs> {
  return yargs
    .usage('$0 profiles [--json]\n\nLists the network presets a scenario (networks:, network:) or `mqtt-sim proxy --profile` can name. Latency is one way, per direction: up = device → broker, down = broker → device.')
    .option('json', { type: 'boolean', default: false, describe: 'Print the presets as JSON (milliseconds, bytes per second)' })
    .example('$0 profiles', 'the preset table')
    .example('$0 profiles --json', 'the normalized presets') as Argv<ProfilesArgs>;
}

export function profilesCommandHandler(args: ProfilesArgs & Partial<CommandContext>): void {
  const io = args.io ?? { stdout: (text: string) => process.stdout.write(text), stderr: (text: string) => process.stderr.write(text) };
  if (args.json === true) io.stdout(JSON.stringify(presets, null, 2) + '\n');
  else io.stdout(profilesTable(presets));
}

export const profilesCommand: CommandModule<object, ProfilesArgs> = {
  command: 'profiles',
  describe: 'List the network presets (lan, wifi, cellular-4g, cellular-3g, satellite, factory-floor)',
  builder: profilesCommandBuilder as CommandModule<object, ProfilesArgs>['builder'],
  handler: profilesCommandHandler,
};
