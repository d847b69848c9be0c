/**
 * The scenario registry. A new scenario is a file in this folder exporting a Scenario
 * (see ./types.ts) plus one line here; the runner, the JSON lines and the summary pick it up.
 */
import { archiveScenario } from './archive';
import { chatScenario } from './chat';
import { groupchatScenario } from './groupchat';
import { idleScenario } from './idle';
import { loginScenario } from './login';
import { websocketScenario } from './websocket';
import type { Scenario } from './types';

export const SCENARIOS: Record<string, Scenario> = {
  [loginScenario.name]: loginScenario,
  [idleScenario.name]: idleScenario,
  [chatScenario.name]: chatScenario,
  [groupchatScenario.name]: groupchatScenario,
  [archiveScenario.name]: archiveScenario,
  [websocketScenario.name]: websocketScenario,
};

export type { Scenario } from './types';
