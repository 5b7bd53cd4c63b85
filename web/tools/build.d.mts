/** web/ */
export declare const WEB_DIR: string;
/** Where the built page goes (web/dist/page). */
export declare const PAGE_DIR: string;
/** Bundles the page into `outDir` and returns that directory. */
export declare function buildPage(outDir?: string): Promise<string>;
