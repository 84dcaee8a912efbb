/**
 * True when `domain` is one of the owned domains or a subdomain of one. With no owned
 * domains configured every domain counts as owned.
 */
export function isOwnedDomain(domain: string, ownedDomains: readonly string[]): boolean {
  if (ownedDomains.length === 0) return true;
  return ownedDomains.some((owned) => domain === owned || domain.endsWith(`.${owned}`));
}
