import type { CommandModule } from 'yargs';
import { brokerCommand } from './broker.js';
import { passwdCommand } from './passwd.js';

/**
 * Every registered command. Only commands that work are listed here; later issues add
 * `broker`, `run`, `validate`, `report`, `compare`, `merge`, `capacity`, `proxy` and `passwd`.
 */
export const commands: CommandModule<object, any>[] = [brokerCommand, passwdCommand];
