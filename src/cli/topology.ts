// `keyflow topology [--mermaid]`: prints the application topology as text or as a Mermaid flowchart.
import { appTopology } from '../app/topology';
import { KeyflowError } from '../errors';
import { renderMermaid, renderText } from '../topology/render';
import type { Command } from './main';

export const topologyCommand: Command = {
  usage: 'topology [--mermaid]',
  summary: 'print the topics and stages of the application (as a Mermaid flowchart with --mermaid)',
  async run(args) {
    const unknown = args.filter((a) => a !== '--mermaid');
    if (unknown.length > 0) {
      throw new KeyflowError('USAGE', `unknown option ${unknown[0]}; usage: keyflow topology [--mermaid]`, {
        retriable: false,
      });
    }
    const topology = appTopology();
    process.stdout.write(args.includes('--mermaid') ? renderMermaid(topology) : renderText(topology));
    return 0;
  },
};
