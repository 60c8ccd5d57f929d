// `keyflow topology [--mermaid]`: prints the application topology as text or as a Mermaid flowchart.
import { appTopology } from '../app/topology';
import { renderMermaid, renderText } from '../topology/render';
import { defineCommand } from './args';

export const topologyCommand = defineCommand({
  name: 'topology',
  summary: 'print the topics and stages of the application (as a Mermaid flowchart with --mermaid)',
  options: { mermaid: { type: 'boolean', doc: 'print a Mermaid flowchart instead of text' } },
  async run({ values }) {
    const topology = appTopology();
    process.stdout.write(values.mermaid ? renderMermaid(topology) : renderText(topology));
    return 0;
  },
});
