import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './server.ts';

/**
 * The curl commands of the publishing flow (docs/publishing-flow.md, verbatim from the
 * contract), in document order. A command runs from a line starting with `curl` while lines
 * end in a backslash or a single-quoted argument (a JSON body) is still open.
 */
export function flowCommands(): string[] {
  const lines = readFileSync(join(REPO_ROOT, 'docs/publishing-flow.md'), 'utf8').split('\n');
  const commands: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i]!.startsWith('curl ')) continue;
    const command = [lines[i]!];
    const open = () => (command.join('\n').match(/'/g) ?? []).length % 2 === 1;
    while ((command.at(-1)!.endsWith('\\') || open()) && i + 1 < lines.length) command.push(lines[++i]!);
    commands.push(command.join('\n'));
  }
  return commands;
}
