import type { CommandModule } from 'yargs';
import { brokerCommand } from './broker.js';
import { capacityCommand } from './capacity.js';
import { compareCommand } from './compare.js';
import { mergeCommand } from './merge.js';
import { passwdCommand } from './passwd.js';
import { profilesCommand } from './profiles.js';
import { proxyCommand } from './proxy.js';
import { reportCommand } from './report.js';
import { runCommand } from './run.js';
import { validateCommand } from './validate.js';

/** Every registered command. Only commands that work are listed here. */
export const commands: CommandModule<object, any>[] = [runCommand, validateCommand, brokerCommand, passwdCommand, profilesCommand, proxyCommand, reportCommand, compareCommand, mergeCommand, capacityCommand];
