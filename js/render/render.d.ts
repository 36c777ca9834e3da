import type { Report } from '../index.js';

export type Tab = 'overview' | 'operations' | 'details';

export interface RenderOptions {
  /** The tab to draw (default 'overview'). */
  tab?: Tab;
  /** Draw the tab strip (default true). */
  tabs?: boolean;
  /** Called when the user picks a tab; default: re-render the picked tab in place. */
  onTab?: (tab: Tab) => void;
}

/** Draws one tab of `report` into `element`, replacing its content. Returns the root element. */
export function renderReport(element: Element, report: Report, options?: RenderOptions): HTMLElement;
/** A count as the renderer shows it (en-US digit grouping). */
export function formatCount(n: number): string;
/** The tabs, as [id, title] pairs. */
export const TABS: ReadonlyArray<readonly [Tab, string]>;
