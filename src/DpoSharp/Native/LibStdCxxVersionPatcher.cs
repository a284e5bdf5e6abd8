// This file is compiled twice: into the DpoSharp library (start-up patch) and into the
// MSBuild inline task in build/DpoSharp.Native.targets (build-time patch). Keep it
// self-contained: BCL only, no other DpoSharp types, and netstandard2.0 APIs only (the inline task is
// compiled against netstandard): no Span, no records, no ranges.
#nullable enable
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;

namespace DpoSharp.Native;

/// <summary>Outcome of <c>LibStdCxxVersionPatcher.PatchFile</c>.</summary>
public enum PatchOutcome
{
    /// <summary>The library needs no version the system libstdc++ lacks; nothing was written.</summary>
    NotNeeded,

    /// <summary>The library was already patched by an earlier run; nothing was written.</summary>
    AlreadyPatched,

    /// <summary>The missing version needs were removed and the file rewritten atomically.</summary>
    Patched,
}

/// <summary>
/// Makes a native library built against a newer libstdc++ loadable where the system's libstdc++ lacks
/// a symbol version the library only <i>references</i>. TorchSharp 0.107's <c>libLibTorchSharp.so</c>
/// needs <c>GLIBCXX_3.4.32</c> for exactly one symbol, <c>std::ios_base_library_init()</c>, which GCC 13's
/// <c>&lt;iostream&gt;</c> emits as a reference that is never called. The patch removes that version
/// from the <c>.gnu.version_r</c> needs of libstdc++.so.6, gives the symbol the global version index and
/// marks it weak (an unresolved weak symbol binds to 0 instead of failing the load). Any other symbol
/// bound to a missing version makes the patch refuse: such a symbol is really called and must not be
/// faked.
/// </summary>
public static class LibStdCxxVersionPatcher
{
    /// <summary>Symbols known to be referenced but never called, so making them weak is safe.</summary>
    public static readonly IReadOnlyCollection<string> ReferenceOnlySymbols = new[] { "_ZSt21ios_base_library_initv" };

    private const uint ShtDynsym = 11;
    private const uint ShtGnuVerdef = 0x6ffffffd;
    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const uint ShtGnuVersym = 0x6fffffff;
    private const string LibStdCxx = "libstdc++.so.6";

    /// <summary>
    /// Finds the libstdc++.so.6 the current process uses (from <c>/proc/self/maps</c>), else the first
    /// one in the usual library directories; null when none is found (not Linux, or static runtime).
    /// </summary>
    public static string? FindSystemLibStdCxx()
    {
        try
        {
            if (File.Exists("/proc/self/maps"))
            {
                foreach (var line in File.ReadLines("/proc/self/maps"))
                {
                    var slash = line.IndexOf('/');
                    if (slash >= 0 && line.EndsWith("/" + LibStdCxx, StringComparison.Ordinal))
                    {
                        return line.Substring(slash);
                    }
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        string[] dirs =
        {
            "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu",
            "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/lib64", "/usr/lib", "/lib",
        };
        return dirs.Select(d => Path.Combine(d, LibStdCxx)).FirstOrDefault(File.Exists);
    }

    /// <summary>The version names (e.g. <c>GLIBCXX_3.4.30</c>) a shared library defines.</summary>
    public static HashSet<string> ReadDefinedVersions(string sharedLibraryPath)
    {
        var elf = Elf64.Read(File.ReadAllBytes(sharedLibraryPath), sharedLibraryPath);
        var names = new HashSet<string>(StringComparer.Ordinal);
        var verdef = elf.FindSection(ShtGnuVerdef);
        if (verdef is null)
        {
            return names;
        }

        var strtab = elf.Sections[(int)verdef.Link];
        long off = (long)verdef.Offset;
        for (int i = 0; i < (int)verdef.Info; i++)
        {
            // Elf64_Verdef: vd_version u16, vd_flags u16, vd_ndx u16, vd_cnt u16, vd_hash u32, vd_aux u32, vd_next u32
            uint vdAux = elf.U32(off + 12);
            uint vdNext = elf.U32(off + 16);
            uint name = elf.U32(off + vdAux); // first Verdaux: vda_name u32, vda_next u32
            names.Add(elf.CString(strtab, name));
            if (vdNext == 0)
            {
                break;
            }

            off += vdNext;
        }

        return names;
    }

    /// <summary>
    /// The libstdc++ version names <paramref name="libraryPath"/> needs that <paramref name="available"/> lacks.
    /// </summary>
    public static IReadOnlyList<string> MissingVersions(string libraryPath, ISet<string> available)
    {
        var elf = Elf64.Read(File.ReadAllBytes(libraryPath), libraryPath);
        return elf.LibStdCxxNeeds().Select(n => n.Name).Where(n => !available.Contains(n)).ToList();
    }

    /// <summary>
    /// Patches <paramref name="libraryPath"/> in place (write to a temporary file, then rename) so that it
    /// loads with the given libstdc++. Idempotent: a second call returns <see cref="PatchOutcome.AlreadyPatched"/>
    /// or <see cref="PatchOutcome.NotNeeded"/> and writes nothing.
    /// </summary>
    /// <param name="libraryPath">The ELF64 shared library to patch.</param>
    /// <param name="systemLibStdCxx">The libstdc++.so.6 it will be loaded with.</param>
    /// <exception cref="InvalidDataException">The file is not a patchable ELF64 library, or a missing version
    /// is bound to a symbol that is really used.</exception>
    public static PatchOutcome PatchFile(string libraryPath, string systemLibStdCxx) =>
        PatchFile(libraryPath, ReadDefinedVersions(systemLibStdCxx));

    /// <summary>As <see cref="PatchFile(string, string)"/>, with the versions the libstdc++ defines given directly.</summary>
    public static PatchOutcome PatchFile(string libraryPath, ISet<string> available)
    {
        var bytes = File.ReadAllBytes(libraryPath);
        var elf = Elf64.Read(bytes, libraryPath);
        var missing = elf.LibStdCxxNeeds().FirstOrDefault(n => !available.Contains(n.Name));
        if (missing is null)
        {
            return elf.HasWeakReferenceOnlySymbols() ? PatchOutcome.AlreadyPatched : PatchOutcome.NotNeeded;
        }

        // Remove one need at a time: offsets of the chain change with each removal.
        while (missing is not null)
        {
            elf.RemoveNeed(missing);
            missing = elf.LibStdCxxNeeds().FirstOrDefault(n => !available.Contains(n.Name));
        }

        // Copy first so the temporary file keeps the original's permissions, then swap it in by rename.
        var tmp = libraryPath + ".dposharp-tmp";
        File.Copy(libraryPath, tmp, overwrite: true);
        File.WriteAllBytes(tmp, bytes);
        File.Replace(tmp, libraryPath, destinationBackupFileName: null);
        return PatchOutcome.Patched;
    }

    /// <summary>
    /// Patches every <c>libLibTorchSharp.so</c> under <paramref name="directory"/> when the system libstdc++
    /// lacks a version it needs. Returns one line per file handled (for build logs). Does nothing off Linux.
    /// </summary>
    public static IReadOnlyList<string> PatchDirectory(string directory)
    {
        var log = new List<string>();
        if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux) || !Directory.Exists(directory))
        {
            return log;
        }

        var libstdcxx = FindSystemLibStdCxx();
        if (libstdcxx is null)
        {
            return log;
        }

        var available = ReadDefinedVersions(libstdcxx);
        foreach (var lib in Directory.EnumerateFiles(directory, "libLibTorchSharp.so", SearchOption.AllDirectories))
        {
            log.Add($"{lib}: {PatchFile(lib, available)} (system {libstdcxx})");
        }

        return log;
    }

    private sealed class Section
    {
        public Section(uint type, ulong offset, ulong size, uint link, uint info)
        {
            Type = type;
            Offset = offset;
            Size = size;
            Link = link;
            Info = info;
        }

        public uint Type { get; }

        public ulong Offset { get; }

        public ulong Size { get; }

        public uint Link { get; }

        public uint Info { get; }
    }

    private sealed class Need
    {
        public Need(string name, long auxOffset, long prevAuxOffset, long verneedOffset, ushort index)
        {
            Name = name;
            AuxOffset = auxOffset;
            PrevAuxOffset = prevAuxOffset;
            VerneedOffset = verneedOffset;
            Index = index;
        }

        public string Name { get; }

        public long AuxOffset { get; }

        public long PrevAuxOffset { get; }

        public long VerneedOffset { get; }

        public ushort Index { get; }
    }

    private sealed class Elf64
    {
        private readonly byte[] _b;
        private readonly string _path;

        private Elf64(byte[] bytes, string path, List<Section> sections)
        {
            _b = bytes;
            _path = path;
            Sections = sections;
        }

        public List<Section> Sections { get; }

        public static Elf64 Read(byte[] b, string path)
        {
            if (b.Length < 64 || b[0] != 0x7f || b[1] != (byte)'E' || b[2] != (byte)'L' || b[3] != (byte)'F')
            {
                throw new InvalidDataException($"{path}: not an ELF file.");
            }

            if (b[4] != 2 || b[5] != 1 || !BitConverter.IsLittleEndian)
            {
                throw new InvalidDataException($"{path}: only 64-bit little-endian ELF is supported.");
            }

            ulong shoff = BitConverter.ToUInt64(b, 0x28);
            ushort shentsize = BitConverter.ToUInt16(b, 0x3A);
            ushort shnum = BitConverter.ToUInt16(b, 0x3C);
            if (shentsize != 64 || shoff == 0 || shoff + (ulong)shnum * 64 > (ulong)b.Length)
            {
                throw new InvalidDataException($"{path}: section header table missing or out of range.");
            }

            var sections = new List<Section>(shnum);
            for (int i = 0; i < shnum; i++)
            {
                int h = (int)shoff + (i * 64);
                var sec = new Section(
                    BitConverter.ToUInt32(b, h + 4),
                    BitConverter.ToUInt64(b, h + 24),
                    BitConverter.ToUInt64(b, h + 32),
                    BitConverter.ToUInt32(b, h + 40),
                    BitConverter.ToUInt32(b, h + 44));
                if (sec.Type != 8 /* NOBITS */ && sec.Offset + sec.Size > (ulong)b.Length)
                {
                    throw new InvalidDataException($"{path}: section {i} lies outside the file.");
                }

                sections.Add(sec);
            }

            return new Elf64(b, path, sections);
        }

        public Section? FindSection(uint type) => Sections.FirstOrDefault(s => s.Type == type);

        public uint U32(long off) => BitConverter.ToUInt32(_b, (int)off);

        public ushort U16(long off) => BitConverter.ToUInt16(_b, (int)off);

        private void W32(long off, uint value) => Array.Copy(BitConverter.GetBytes(value), 0, _b, off, 4);

        private void W16(long off, ushort value) => Array.Copy(BitConverter.GetBytes(value), 0, _b, off, 2);

        public string CString(Section strtab, uint index)
        {
            int start = (int)strtab.Offset + (int)index;
            int end = Array.IndexOf(_b, (byte)0, start);
            return Encoding.ASCII.GetString(_b, start, end - start);
        }

        public List<Need> LibStdCxxNeeds()
        {
            var result = new List<Need>();
            var verneed = FindSection(ShtGnuVerneed);
            if (verneed is null)
            {
                return result;
            }

            var strtab = Sections[(int)verneed.Link];
            long off = (long)verneed.Offset;
            for (int i = 0; i < (int)verneed.Info; i++)
            {
                // Elf64_Verneed: vn_version u16, vn_cnt u16, vn_file u32, vn_aux u32, vn_next u32
                ushort cnt = U16(off + 2);
                string file = CString(strtab, U32(off + 4));
                if (file == LibStdCxx)
                {
                    long aux = off + U32(off + 8);
                    long prev = -1;
                    for (int j = 0; j < cnt; j++)
                    {
                        // Elf64_Vernaux: vna_hash u32, vna_flags u16, vna_other u16, vna_name u32, vna_next u32
                        result.Add(new Need(CString(strtab, U32(aux + 8)), aux, prev, off, U16(aux + 6)));
                        uint next = U32(aux + 12);
                        if (next == 0)
                        {
                            break;
                        }

                        prev = aux;
                        aux += next;
                    }
                }

                uint vnNext = U32(off + 12);
                if (vnNext == 0)
                {
                    break;
                }

                off += vnNext;
            }

            return result;
        }

        public bool HasWeakReferenceOnlySymbols()
        {
            var tables = SymbolTables();
            Section dynsym = tables[0], dynstr = tables[1];
            for (ulong i = 0; i < dynsym.Size / 24; i++)
            {
                long sym = (long)(dynsym.Offset + (i * 24));
                if (ReferenceOnlySymbols.Contains(CString(dynstr, U32(sym))) && (_b[sym + 4] >> 4) == 2)
                {
                    return true;
                }
            }

            return false;
        }

        public void RemoveNeed(Need need)
        {
            var tables = SymbolTables();
            Section dynsym = tables[0], dynstr = tables[1], versym = tables[2];
            var users = new List<long>();
            for (ulong i = 0; i < dynsym.Size / 24; i++)
            {
                if ((U16((long)(versym.Offset + (i * 2))) & 0x7fff) == need.Index)
                {
                    long sym = (long)(dynsym.Offset + (i * 24));
                    string name = CString(dynstr, U32(sym));
                    bool undefined = U16(sym + 6) == 0; // st_shndx == SHN_UNDEF
                    if (!undefined || !ReferenceOnlySymbols.Contains(name))
                    {
                        throw new InvalidDataException(
                            $"{_path}: symbol '{name}' needs {need.Name}, which the system libstdc++ lacks, and it is " +
                            "not a reference-only symbol; install a newer libstdc++ (GCC 13 or later).");
                    }

                    users.Add((long)i);
                }
            }

            foreach (long i in users)
            {
                long sym = (long)(dynsym.Offset + ((ulong)i * 24));
                _b[sym + 4] = (byte)((2 << 4) | (_b[sym + 4] & 0xf)); // STB_WEAK, keep the type
                W16((long)(versym.Offset + ((ulong)i * 2)), 1);
            }

            // Unlink the Vernaux entry and decrement vn_cnt.
            uint removedNext = U32(need.AuxOffset + 12);
            if (need.PrevAuxOffset >= 0)
            {
                uint prevNext = U32(need.PrevAuxOffset + 12);
                uint newNext = removedNext == 0 ? 0 : prevNext + removedNext;
                W32(need.PrevAuxOffset + 12, newNext);
            }
            else
            {
                uint vnAux = U32(need.VerneedOffset + 8);
                W32(need.VerneedOffset + 8, vnAux + removedNext);
            }

            ushort cnt = U16(need.VerneedOffset + 2);
            W16(need.VerneedOffset + 2, (ushort)(cnt - 1));
        }

        private Section[] SymbolTables()
        {
            var dynsym = FindSection(ShtDynsym) ?? throw new InvalidDataException($"{_path}: no .dynsym section.");
            var versym = FindSection(ShtGnuVersym) ?? throw new InvalidDataException($"{_path}: no .gnu.version section.");
            return new[] { dynsym, Sections[(int)dynsym.Link], versym };
        }
    }
}

#if !DPOSHARP_LIBRARY
/// <summary>MSBuild task: patches libLibTorchSharp.so files copied to an output or publish folder.</summary>
public sealed class PatchLibTorchSharp : Microsoft.Build.Utilities.Task
{
    /// <summary>The folder to scan (recursively).</summary>
    [Microsoft.Build.Framework.Required]
    public string Directory { get; set; } = "";

    /// <inheritdoc/>
    public override bool Execute()
    {
        try
        {
            foreach (var line in LibStdCxxVersionPatcher.PatchDirectory(Directory))
            {
                Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Low, "DpoSharp: " + line);
            }

            return true;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            Log.LogError("DpoSharp: could not patch libLibTorchSharp.so: " + e.Message);
            return false;
        }
    }
}
#endif
