/** A running static server. */
export interface StaticServer {
  /** Its base URL, e.g. http://localhost:5173/ */
  url: string;
  close(): Promise<void>;
}
/** Serves `mounts` ({ '/': dir, '/ref/': otherDir }) on 127.0.0.1:`port` (0: any free port). */
export declare function startServer(opts: { mounts: Record<string, string>; port?: number; host?: string }): Promise<StaticServer>;
