import type { BrowserContext } from 'playwright-core';
/** Where Chromium is expected; KILN_CHROMIUM overrides. */
export declare const CHROMIUM_PATH: string;
/** The command-line flags every Kiln browser run uses. */
export declare const CHROMIUM_ARGS: string[];
/** A launched Chromium with its own fresh profile. */
export interface LaunchedChromium {
  context: BrowserContext;
  /** Closes the browser and deletes the profile. */
  close(): Promise<void>;
}
/** Starts Chromium headless with WebGPU enabled and background networking off. */
export declare function launchChromium(opts?: { headless?: boolean }): Promise<LaunchedChromium>;
