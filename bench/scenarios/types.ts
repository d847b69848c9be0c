/**
 * What a scenario is. To add one (groupchat, archive, websocket, ...): write
 * bench/scenarios/<name>.ts exporting a Scenario and add it to SCENARIOS in ./index.ts.
 */
import type { Instance, PeerFeatures } from '../peers/types';
import type { ScramCache } from '../lib/client';

export interface OptionSpec {
  default: string;
  help: string;
}

export interface MetricInfo {
  unit: string;
  /** Which way is better (for reading the ratios). */
  better: 'higher' | 'lower';
  /** Shown in the summary table (others only in the JSON lines). */
  summary?: boolean;
}

export interface CaseResult {
  /** A sub-case of the scenario (e.g. "PLAIN sequential", "5000 sessions"); '' for a single case. */
  case: string;
  metrics: Record<string, number>;
}

export interface ScenarioContext {
  instance: Instance;
  /** 1-based run number. */
  run: number;
  /** Option value (the CLI's --name VALUE, or the scenario's default). */
  opt(name: string): string;
  num(name: string): number;
  /** Source addresses to spread client connections over (127.0.0.x). */
  sources: readonly string[];
  /** Client-side SCRAM key cache, kept for the whole invocation (like mobile clients). */
  scramCache: ScramCache;
  log(msg: string): void;
}

export interface Scenario {
  name: string;
  description: string;
  options: Record<string, OptionSpec>;
  /**
   * 'shared': all runs on one server instance (exposes slowdown between the first and last run);
   * 'per-run': a fresh instance per run (e.g. memory baselines).
   */
  instance: 'shared' | 'per-run';
  metrics: Record<string, MetricInfo>;
  /** How many accounts (u0 ..) the scenario needs, from its options. */
  users(opt: (name: string) => string): number;
  /** Server features the scenario needs (group chat, archiving, WebSocket); none by default. */
  features?(opt: (name: string) => string): PeerFeatures;
  /** Open files the generator (and so each server) needs. */
  fileLimit?(opt: (name: string) => string): number;
  run(ctx: ScenarioContext): Promise<CaseResult[]>;
}
