/*
 * A PDF that runs JavaScript when opened or on a page/field event: /JavaScript or /JS
 * together with /OpenAction or /AA (additional actions).  Names are matched whole (the next
 * byte is a PDF delimiter or whitespace) so /JSxx or Apple's /AAPL:... keys do not count.
 * Only the raw bytes are seen: names hidden in compressed object streams or written with
 * #xx escapes are the pdf-active engine's job.
 */
rule PDF_JavaScript_AutoAction
{
    meta:
        verdict = "suspicious"
        description = "PDF with JavaScript and an automatic action (/OpenAction or /AA)"

    strings:
        $pdf = "%PDF-"
        $javascript = /\/JavaScript[\x00\t\n\x0c\r \/<>\[\]()%{}]/
        $js = /\/JS[\x00\t\n\x0c\r \/<>\[\]()%{}]/
        $open_action = /\/OpenAction[\x00\t\n\x0c\r \/<>\[\]()%{}0-9]/
        $aa = /\/AA[\x00\t\n\x0c\r \/<>\[\]()%{}]/

    condition:
        $pdf in (0..1024) and
        ($javascript or $js) and
        ($open_action or $aa)
}
