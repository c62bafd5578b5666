/**
 * The placement port: which twins this node hosts. A single node hosts them all; in cluster
 * mode a twin belongs to the node holding its shard's lease. Work that must run on exactly one
 * node (a FOTA campaign, a twin's rule timers) asks it.
 * @module
 */

/** Which twins (or other ids placed like twins, e.g. campaigns) this node owns. */
export interface Placement {
  /** True when this node hosts `id` now. */
  owns(id: string): boolean;
}

/** The placement of a single node: it owns everything. */
export const everything: Placement = { owns: () => true };
