// The CNI result in its newest (1.x) shape; src/cni/result.ts converts to older shapes.

export interface Interface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
}

export interface IpConfig {
  /** CIDR notation, e.g. "10.13.0.2/24". */
  address: string;
  gateway?: string;
  /** Index into Result.interfaces. */
  interface?: number;
}

export interface Route {
  dst: string;
  gw?: string;
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}

export interface Dns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface Result {
  cniVersion: string;
  interfaces?: Interface[];
  ips?: IpConfig[];
  routes?: Route[];
  dns?: Dns;
}

/** What an IPAM plugin (built-in or delegated) returns. */
export interface IpamResult {
  ips: IpConfig[];
  routes: Route[];
  dns?: Dns;
}
