/*
 * An Office document carrying a VBA project whose names include an auto-exec entry point
 * (AutoOpen, Auto_Open, Document_Open, Workbook_Open, ...).  Works on OLE files (.doc,
 * .xls, .ppt, vbaProject.bin) where the VBA project's name tables are stored uncompressed;
 * in OOXML (.docm, .xlsm) the vbaProject.bin is deflated inside the zip, so only the
 * part name is visible and the office-macros engine (olevba) must decide.
 */
rule Office_AutoExec_Macro
{
    meta:
        verdict = "suspicious"
        description = "Office file with a VBA project and an auto-exec macro name"

    strings:
        $vba_project = "_VBA_PROJECT" ascii wide
        $vba_part = "vbaProject.bin" ascii nocase
        $vba_attribute = "Attribute VB_" ascii
        $vba_compressed = "\x00Attribut" ascii

        $auto_open = "AutoOpen" ascii wide nocase
        $auto_open_ = "Auto_Open" ascii wide nocase
        $auto_exec = "AutoExec" ascii wide nocase
        $auto_close = "AutoClose" ascii wide nocase
        $document_open = "Document_Open" ascii wide nocase
        $workbook_open = "Workbook_Open" ascii wide nocase

    condition:
        (uint32be(0) == 0xD0CF11E0 or uint32(0) == 0x04034B50) and
        any of ($vba_*) and
        any of ($auto_*, $document_open, $workbook_open)
}
