/*
 * The EICAR anti-virus test file (https://www.eicar.org/download-anti-malware-testfile/):
 * the 68-byte string at offset 0, optionally followed by up to 60 bytes of whitespace.
 */
rule EICAR_Test_File
{
    meta:
        verdict = "malicious"
        description = "EICAR anti-virus test file"

    strings:
        $eicar = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"

    condition:
        $eicar at 0 and filesize <= 128
}
