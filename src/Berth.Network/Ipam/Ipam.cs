using System.Net;
using System.Text.Json;
using Berth.Network.State;

namespace Berth.Network;

/// <summary>
/// Address management: one pool per network (an IPv4 subnet and gateway, and for a dual-stack
/// network an IPv6 subnet and gateway beside them), addresses handed to owners
/// (endpoint ids). Every change is persisted before it is returned (temp file + rename of
/// <c>&lt;state&gt;/ipam/&lt;pool&gt;.json</c>; fsynced for a new pool), so a daemon that restarts — or
/// crashes right after an allocation — never hands the same address out twice. Pools may not overlap.
/// Not thread-safe on its own: <see cref="NetworkController"/> serialises calls.
/// </summary>
public sealed class Ipam
{
    private readonly string _directory;
    private readonly Dictionary<string, PoolRecord> _pools = new(StringComparer.Ordinal);

    public Ipam(string stateDirectory)
    {
        _directory = Path.Combine(stateDirectory, "ipam");
        Directory.CreateDirectory(_directory);
        AtomicFile.RemoveLeftovers(_directory);
        foreach (var file in Directory.EnumerateFiles(_directory, "*.json"))
        {
            var record = JsonSerializer.Deserialize(File.ReadAllText(file), StateJson.Default.PoolRecord)
                ?? throw new NetworkException(NetworkErrorKind.Internal, $"IPAM state {file} is empty");
            _pools[Path.GetFileNameWithoutExtension(file)] = record;
        }
    }

    /// <summary>Docker's default address pools: 172.17.0.0/16 … 172.31.0.0/16 whole, then 192.168.0.0/16 cut in /20s.</summary>
    public static IReadOnlyList<AddressPool> DefaultPools { get; } =
    [
        .. Enumerable.Range(17, 15).Select(b => new AddressPool(new Ipv4Subnet((172u << 24) | ((uint)b << 16), 16), 16)),
        new AddressPool(Ipv4Subnet.Parse("192.168.0.0/16"), 20),
    ];

    /// <summary>
    /// The first subnet of <paramref name="pools"/> (each base cut into subnets of its size, in order;
    /// null: <see cref="DefaultPools"/>) that overlaps neither <paramref name="avoid"/> (the host's routes)
    /// nor an existing pool. A candidate that overlaps something is skipped together with every later
    /// candidate that overlaps the same thing, so a /8 base cut in /24s is not walked address block by
    /// address block past a /16 route.
    /// </summary>
    public Ipv4Subnet ChooseSubnet(IEnumerable<Ipv4Subnet> avoid, IReadOnlyList<AddressPool>? pools = null)
    {
        var taken = avoid.Concat(_pools.Values.Select(p => Ipv4Subnet.Parse(p.Subnet))).ToList();
        foreach (var pool in pools ?? DefaultPools)
        {
            var step = 1UL << (32 - pool.Size);
            var end = (ulong)pool.Base.Broadcast + 1;
            for (ulong n = pool.Base.Network; n < end;)
            {
                var candidate = new Ipv4Subnet((uint)n, pool.Size);
                var clash = taken.FindIndex(t => t.Overlaps(candidate));
                if (clash < 0) return candidate;
                var pastClash = ((ulong)taken[clash].Broadcast + 1 + step - 1) / step * step;
                n = Math.Max(n + step, pastClash);
            }
        }
        throw new NetworkException(NetworkErrorKind.Exhausted, pools is null
            ? "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network (172.17-31.0.0/16, 192.168.0.0/16 overlap existing networks or host routes)"
            : $"could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network (default-address-pools {string.Join(", ", pools)} overlap existing networks or host routes)");
    }

    public IReadOnlyCollection<string> Pools => _pools.Keys;

    public bool HasPool(string poolId) => _pools.ContainsKey(poolId);

    public (Ipv4Subnet Subnet, IPAddress Gateway) GetPool(string poolId)
    {
        var p = Pool(poolId);
        return (Ipv4Subnet.Parse(p.Subnet), IPAddress.Parse(p.Gateway));
    }

    /// <summary>The pool's --ip-range; null when it has none.</summary>
    public Ipv4Subnet? GetRange(string poolId) => Pool(poolId).Range is { } r ? Ipv4Subnet.Parse(r) : null;

    /// <summary>Addresses in use (the gateway excluded) with their owners.</summary>
    public IReadOnlyDictionary<string, string> Allocations(string poolId) => Pool(poolId).Allocations;

    /// <summary>
    /// The first /64 of <paramref name="ula48"/> (the daemon's ULA prefix) that overlaps no existing
    /// pool's IPv6 subnet nor <paramref name="avoid"/> (the host's IPv6 routes): docker 27's default
    /// for <c>--ipv6</c> without a subnet.
    /// </summary>
    public Ipv6Subnet ChooseSubnet6(Ipv6Subnet ula48, IEnumerable<Ipv6Subnet> avoid)
    {
        var taken = avoid.Concat(_pools.Values.Where(p => p.Subnet6 is not null).Select(p => Ipv6Subnet.Parse(p.Subnet6!))).ToList();
        for (UInt128 i = 0; i < 65536; i++)
        {
            var candidate = new Ipv6Subnet(ula48.Network | (i << 64), 64);
            if (!taken.Any(t => t.Overlaps(candidate))) return candidate;
        }
        throw new NetworkException(NetworkErrorKind.Exhausted, $"could not find an available, non-overlapping IPv6 address pool in {ula48}");
    }

    /// <summary>The IPv6 subnet and gateway of a dual-stack pool; null for an IPv4-only one.</summary>
    public (Ipv6Subnet Subnet, IPAddress Gateway)? GetPool6(string poolId)
    {
        var p = Pool(poolId);
        return p.Subnet6 is null ? null : (Ipv6Subnet.Parse(p.Subnet6), IPAddress.Parse(p.Gateway6!));
    }

    /// <summary>IPv6 addresses in use (the gateway excluded) with their owners; empty for an IPv4-only pool.</summary>
    public IReadOnlyDictionary<string, string> Allocations6(string poolId) => Pool(poolId).Allocations6 ?? [];

    /// <summary>
    /// Validates and records a pool. The gateway defaults to the first host address (.1).
    /// Refused: prefixes longer than /30, a gateway outside the subnet or on its network/broadcast
    /// address, a subnet overlapping another pool. With <paramref name="subnet6"/> the pool is dual
    /// stack: the IPv6 gateway defaults to <c>subnet::1</c>; refused are prefixes longer than /126 (room
    /// for the gateway and a container), a gateway outside the subnet or on its Subnet-Router anycast
    /// address (the subnet's first, RFC 4291 2.6.1), and an IPv6 subnet overlapping another pool's.
    /// <paramref name="range"/> (--ip-range) must lie inside the subnet: dynamic allocation stays in it.
    /// <paramref name="auxAddresses"/> (--aux-address) are reserved: inside the subnet, not its network or
    /// broadcast address nor the gateway nor each other (dockerd: "Address already in use").
    /// <paramref name="range6"/> and <paramref name="auxAddresses6"/> are the same for the IPv6 subnet
    /// (whose Subnet-Router anycast address, its first, is reserved as the network address is).
    /// </summary>
    public IPAddress AddPool(string poolId, Ipv4Subnet subnet, IPAddress? gateway = null, Ipv6Subnet? subnet6 = null, IPAddress? gateway6 = null,
        Ipv4Subnet? range = null, IReadOnlyDictionary<string, IPAddress>? auxAddresses = null,
        Ipv6Subnet? range6 = null, IReadOnlyDictionary<string, IPAddress>? auxAddresses6 = null)
    {
        ValidateId(poolId);
        if (_pools.ContainsKey(poolId)) throw new NetworkException(NetworkErrorKind.Conflict, $"address pool {poolId} already exists");
        if (subnet.PrefixLength > 30) throw new NetworkException(NetworkErrorKind.InvalidArgument, $"subnet {subnet} is too small: at most /30");
        if (subnet.PrefixLength < 8) throw new NetworkException(NetworkErrorKind.InvalidArgument, $"subnet {subnet} is too large: at least /8");
        var gw = gateway is null ? subnet.Network + 1 : Ipv4Subnet.ToUInt(gateway);
        if (!subnet.Contains(gw) || gw == subnet.Network || gw == subnet.Broadcast)
        {
            throw new NetworkException(NetworkErrorKind.InvalidArgument, $"gateway {Ipv4Subnet.ToAddress(gw)} is not a host address of subnet {subnet}");
        }
        foreach (var (id, other) in _pools)
        {
            if (Ipv4Subnet.Parse(other.Subnet).Overlaps(subnet))
            {
                throw new NetworkException(NetworkErrorKind.Conflict, $"subnet {subnet} overlaps subnet {other.Subnet} of network {id}");
            }
        }
        if (range is { } r && (r.PrefixLength < subnet.PrefixLength || !subnet.Contains(r.Network)))
            throw new NetworkException(NetworkErrorKind.InvalidArgument, $"invalid ip-range {r}: parent subnet {subnet} doesn't contain ip-range");
        var reserved = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, address) in auxAddresses ?? new Dictionary<string, IPAddress>())
        {
            var a = Ipv4Subnet.ToUInt(address);
            if (!subnet.Contains(a))
                throw new NetworkException(NetworkErrorKind.InvalidArgument, $"invalid auxiliary address {name}: parent subnet {subnet} doesn't contain this address");
            if (a == gw || a == subnet.Network || a == subnet.Broadcast || !reserved.TryAdd(address.ToString(), name))
                throw new NetworkException(NetworkErrorKind.Conflict, $"failed to allocate secondary ip address ({name}:{address}): Address already in use");
        }
        IPAddress? gw6 = null;
        if (subnet6 is { } s6)
        {
            if (s6.PrefixLength > 126) throw new NetworkException(NetworkErrorKind.InvalidArgument, $"IPv6 subnet {s6} is too small: at most /126");
            if (s6.PrefixLength < 16) throw new NetworkException(NetworkErrorKind.InvalidArgument, $"IPv6 subnet {s6} is too large: at least /16");
            var g6 = gateway6 is null ? s6.Network + 1 : Ipv6Subnet.ToUInt128(gateway6);
            if (!s6.Contains(g6) || g6 == s6.Network)
                throw new NetworkException(NetworkErrorKind.InvalidArgument, $"gateway {Ipv6Subnet.ToAddress(g6)} is not a host address of subnet {s6}");
            foreach (var (id, other) in _pools)
            {
                if (other.Subnet6 is not null && Ipv6Subnet.Parse(other.Subnet6).Overlaps(s6))
                    throw new NetworkException(NetworkErrorKind.Conflict, $"subnet {s6} overlaps subnet {other.Subnet6} of network {id}");
            }
            gw6 = Ipv6Subnet.ToAddress(g6);
        }
        var reserved6 = new Dictionary<string, string>(StringComparer.Ordinal);
        if (range6 is not null || auxAddresses6 is { Count: > 0 })
        {
            if (subnet6 is not { } s6r) throw new NetworkException(NetworkErrorKind.InvalidArgument, "an IPv6 ip-range or auxiliary address needs an IPv6 subnet");
            if (range6 is { } r6 && (r6.PrefixLength < s6r.PrefixLength || !s6r.Contains(r6.Network)))
                throw new NetworkException(NetworkErrorKind.InvalidArgument, $"invalid ip-range {r6}: parent subnet {s6r} doesn't contain ip-range");
            foreach (var (name, address) in auxAddresses6 ?? new Dictionary<string, IPAddress>())
            {
                if (!s6r.Contains(address))
                    throw new NetworkException(NetworkErrorKind.InvalidArgument, $"invalid auxiliary address {name}: parent subnet {s6r} doesn't contain this address");
                var a = Ipv6Subnet.ToUInt128(address);
                if (a == Ipv6Subnet.ToUInt128(gw6!) || a == s6r.Network || !reserved6.TryAdd(address.ToString(), name))
                    throw new NetworkException(NetworkErrorKind.Conflict, $"failed to allocate secondary ip address ({name}:{address}): Address already in use");
            }
        }
        var record = new PoolRecord
        {
            Subnet = subnet.ToString(), Gateway = Ipv4Subnet.ToAddress(gw).ToString(),
            Subnet6 = subnet6?.ToString(), Gateway6 = gw6?.ToString(), Allocations6 = subnet6 is null ? null : new(),
            Range = range?.ToString(), Reserved = reserved.Count > 0 ? reserved : null,
            Range6 = range6?.ToString(), Reserved6 = reserved6.Count > 0 ? reserved6 : null,
        };
        Save(poolId, record, durable: true);
        _pools[poolId] = record;
        return Ipv4Subnet.ToAddress(gw);
    }

    public void RemovePool(string poolId)
    {
        AtomicFile.Delete(PathOf(poolId));
        _pools.Remove(poolId);
    }

    /// <summary>
    /// Hands <paramref name="owner"/> the requested address (Conflict if taken or reserved) or the next
    /// free one after the last handed out (round robin, as Docker does). Exhausted when none is free.
    /// A requested address may be anywhere in the subnet, in the pool's --ip-range or not (as dockerd
    /// allows it); one chosen here is always in the range, when the pool has one.
    /// </summary>
    public IPAddress Allocate(string poolId, string owner, IPAddress? requested = null)
    {
        var pool = Pool(poolId);
        var subnet = Ipv4Subnet.Parse(pool.Subnet);
        var gateway = Ipv4Subnet.ToUInt(IPAddress.Parse(pool.Gateway));
        uint chosen;
        if (requested is not null)
        {
            chosen = Ipv4Subnet.ToUInt(requested);
            if (!subnet.Contains(chosen) || chosen == subnet.Network || chosen == subnet.Broadcast)
                throw new NetworkException(NetworkErrorKind.InvalidArgument, $"address {requested} is not a host address of subnet {subnet}");
            if (chosen == gateway) throw new NetworkException(NetworkErrorKind.Conflict, $"address {requested} is the gateway of {poolId}");
            if (pool.Reserved?.TryGetValue(requested.ToString(), out var aux) == true)
                throw new NetworkException(NetworkErrorKind.Conflict, $"address {requested} is already in use (auxiliary address {aux})");
            if (pool.Allocations.TryGetValue(requested.ToString(), out var holder))
                throw new NetworkException(NetworkErrorKind.Conflict, $"address {requested} is already in use (by {holder})");
        }
        else
        {
            // The hosts of the subnet that the range covers (all of them without a range). As in
            // dockerd, a range's own network and broadcast addresses are hosts when the subnet's are not.
            var range = pool.Range is null ? subnet : Ipv4Subnet.Parse(pool.Range);
            var first = Math.Max(range.Network, subnet.Network + 1);
            var last = Math.Min(range.Broadcast, subnet.Broadcast - 1);
            var count = last >= first ? last - first + 1 : 0;
            var lastGiven = pool.Last is null ? (uint?)null : Ipv4Subnet.ToUInt(IPAddress.Parse(pool.Last));
            var start = lastGiven is { } l && l >= first && l <= last ? (l - first + 1) % count : 0u;
            chosen = 0;
            for (uint i = 0; i < count; i++)
            {
                var candidate = first + (start + i) % count;
                var text = Ipv4Subnet.ToAddress(candidate).ToString();
                if (candidate == gateway || pool.Allocations.ContainsKey(text) || pool.Reserved?.ContainsKey(text) == true) continue;
                chosen = candidate;
                break;
            }
            if (chosen == 0)
            {
                throw new NetworkException(NetworkErrorKind.Exhausted, pool.Range is null
                    ? $"no available IPv4 address in network {poolId} ({subnet}): all {count - 1} host addresses are in use"
                    : $"no available IPv4 address in network {poolId}: ip-range {range} of {subnet} is full");
            }
        }
        var address = Ipv4Subnet.ToAddress(chosen);
        pool.Allocations[address.ToString()] = owner;
        var previousLast = pool.Last;
        pool.Last = address.ToString();
        try { Save(poolId, pool); }
        catch
        {
            pool.Allocations.Remove(address.ToString());
            pool.Last = previousLast;
            throw;
        }
        return address;
    }

    /// <summary>
    /// Hands <paramref name="owner"/> an IPv6 address of a dual-stack pool: the requested one (refused
    /// outside the subnet, on the Subnet-Router anycast address or the gateway, or when taken), or the
    /// next free one after the last handed out. IPv6 has no broadcast address: the subnet's last is a host.
    /// </summary>
    public IPAddress Allocate6(string poolId, string owner, IPAddress? requested = null)
    {
        var pool = Pool(poolId);
        if (pool.Subnet6 is null || pool.Allocations6 is null) throw new NetworkException(NetworkErrorKind.InvalidArgument, $"network {poolId} has no IPv6 subnet");
        var subnet = Ipv6Subnet.Parse(pool.Subnet6);
        var gateway = Ipv6Subnet.ToUInt128(IPAddress.Parse(pool.Gateway6!));
        UInt128 chosen;
        if (requested is not null)
        {
            if (!subnet.Contains(requested) || Ipv6Subnet.ToUInt128(requested) == subnet.Network)
                throw new NetworkException(NetworkErrorKind.InvalidArgument, $"address {requested} is not a host address of subnet {subnet}");
            chosen = Ipv6Subnet.ToUInt128(requested);
            if (chosen == gateway) throw new NetworkException(NetworkErrorKind.Conflict, $"address {requested} is the gateway of {poolId}");
            if (pool.Reserved6?.TryGetValue(Ipv6Subnet.ToAddress(chosen).ToString(), out var aux) == true)
                throw new NetworkException(NetworkErrorKind.Conflict, $"address {requested} is already in use (auxiliary address {aux})");
            if (pool.Allocations6.TryGetValue(Ipv6Subnet.ToAddress(chosen).ToString(), out var holder))
                throw new NetworkException(NetworkErrorKind.Conflict, $"address {requested} is already in use (by {holder})");
        }
        else
        {
            // Hosts are network+1 .. last, within the ip-range when there is one. At most Count+R+1 of
            // them are taken (the allocations, the R reserved ones and the gateway), so Count+R+2
            // candidates in a row hold a free one whenever the range has one: the search never walks
            // a /64's 2^64 addresses.
            var range = pool.Range6 is null ? subnet : Ipv6Subnet.Parse(pool.Range6);
            var first = UInt128.Max(range.Network, subnet.Network + 1);
            var count = range.Last >= first ? range.Last - first + 1 : UInt128.Zero;
            var lastGiven = pool.Last6 is { } last ? Ipv6Subnet.ToUInt128(IPAddress.Parse(last)) : (UInt128?)null;
            var start = lastGiven is { } l && l >= first && l <= range.Last ? (l - first + 1) % count : UInt128.Zero;
            var tries = UInt128.Min(count, (UInt128)(pool.Allocations6.Count + (pool.Reserved6?.Count ?? 0)) + 2);
            chosen = UInt128.Zero;
            for (UInt128 i = 0; i < tries; i++)
            {
                var candidate = first + (start + i) % count;
                var text = Ipv6Subnet.ToAddress(candidate).ToString();
                if (candidate == gateway || pool.Allocations6.ContainsKey(text) || pool.Reserved6?.ContainsKey(text) == true) continue;
                chosen = candidate;
                break;
            }
            if (chosen == UInt128.Zero)
                throw new NetworkException(NetworkErrorKind.Exhausted, pool.Range6 is null
                    ? $"no available IPv6 address in network {poolId} ({subnet})"
                    : $"no available IPv6 address in network {poolId}: ip-range {range} of {subnet} is full");
        }
        var address = Ipv6Subnet.ToAddress(chosen);
        pool.Allocations6[address.ToString()] = owner;
        var previousLast = pool.Last6;
        pool.Last6 = address.ToString();
        try { Save(poolId, pool); }
        catch
        {
            pool.Allocations6.Remove(address.ToString());
            pool.Last6 = previousLast;
            throw;
        }
        return address;
    }

    /// <summary>Frees an address (either family); freeing a free address is a no-op.</summary>
    public void Release(string poolId, IPAddress address)
    {
        var pool = Pool(poolId);
        var allocations = address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? pool.Allocations6 : pool.Allocations;
        if (allocations is not null && allocations.Remove(address.ToString())) Save(poolId, pool);
    }

    /// <summary>Frees every address whose owner <paramref name="isLive"/> rejects (cleanup after a crash). Returns how many.</summary>
    public int ReleaseUnless(string poolId, Func<string, bool> isLive)
    {
        var pool = Pool(poolId);
        var stale = pool.Allocations.Where(a => !isLive(a.Value)).Select(a => a.Key).ToList();
        foreach (var a in stale) pool.Allocations.Remove(a);
        var stale6 = (pool.Allocations6 ?? []).Where(a => !isLive(a.Value)).Select(a => a.Key).ToList();
        foreach (var a in stale6) pool.Allocations6!.Remove(a);
        if (stale.Count + stale6.Count > 0) Save(poolId, pool);
        return stale.Count + stale6.Count;
    }

    private PoolRecord Pool(string poolId) =>
        _pools.TryGetValue(poolId, out var p) ? p : throw new NetworkException(NetworkErrorKind.NotFound, $"address pool {poolId} not found");

    private string PathOf(string poolId) => Path.Combine(_directory, poolId + ".json");

    // Allocations change per container start and exit; the pool itself rarely. Only a pool's
    // creation is made durable against a machine crash: after a reboot no endpoint holds an
    // address any more (see AtomicFile), while a berthd crash keeps every allocation written.
    private void Save(string poolId, PoolRecord record, bool durable = false)
        => AtomicFile.Write(PathOf(poolId), JsonSerializer.Serialize(record, StateJson.Default.PoolRecord), durable);

    private static void ValidateId(string id)
    {
        if (id.Length == 0 || id.Any(c => !char.IsAsciiLetterOrDigit(c) && c is not ('-' or '_' or '.')) || id.StartsWith('.'))
            throw new NetworkException(NetworkErrorKind.InvalidArgument, $"invalid pool id \"{id}\"");
    }
}
