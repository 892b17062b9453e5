/*
 * A Windows PE executable carried, uncompressed, inside another file (a PDF, an OLE Office
 * document, an RTF, ...): an MZ header at some offset > 0 whose DOS stub carries the
 * linker's message and whose e_lfanew points at "PE\0\0".  Files that are themselves PE
 * executables (MZ at offset 0) are not matched: installers embedding PEs are normal.
 * Embedded files that are compressed (Flate streams, zip members) are not visible here.
 */
rule Embedded_PE_In_Document
{
    meta:
        verdict = "suspicious"
        description = "PE executable embedded at an offset > 0 inside a non-executable file"

    strings:
        // Microsoft linkers' stub: code at 0x40, message at 0x4E
        $dos_ms = "This program cannot be run in DOS mode" ascii
        // Borland/Delphi stub: message at 0x50
        $dos_borland = "This program must be run under Win32" ascii

    condition:
        uint16(0) != 0x5A4D and (
            for any i in (1..#dos_ms) : (
                @dos_ms[i] > 0x4E and
                uint16(@dos_ms[i] - 0x4E) == 0x5A4D and
                uint32(@dos_ms[i] - 0x4E + uint32(@dos_ms[i] - 0x4E + 0x3C)) == 0x00004550
            )
            or
            for any i in (1..#dos_borland) : (
                @dos_borland[i] > 0x50 and
                uint16(@dos_borland[i] - 0x50) == 0x5A4D and
                uint32(@dos_borland[i] - 0x50 + uint32(@dos_borland[i] - 0x50 + 0x3C)) == 0x00004550
            )
        )
}
