"""Certificates for the TLS tests, made with the openssl CLI: a server certificate signed by
a given CA, for a given name, valid now or expired (2020-01-01 .. 2020-01-02)."""

import subprocess

# `openssl ca` (the only way to set a start date in the past) wants a database and a policy
CA_CNF = """[ca]
default_ca = lab
[lab]
dir = .
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any
copy_extensions = copy
[any]
commonName = supplied
"""


def openssl(d, *args):
    subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)


def make_ca(d, stem, subject):
    """``stem``.pem and ``stem``.key in ``d``: a self-signed CA."""
    openssl(d, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", stem + ".key",
            "-out", stem + ".pem", "-days", "30", "-subj", "/CN=" + subject)


def issue(d, stem, name, ca_crt, ca_key, expired=False):
    """``stem``.pem and ``stem``.key in ``d``: a certificate for ``name`` (CN and DNS
    subjectAltName) signed by the CA, valid two days from now or long expired."""
    openssl(d, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", stem + ".key", "-out",
            stem + ".csr", "-subj", "/CN=" + name, "-addext", "subjectAltName=DNS:" + name)
    if expired:
        if not (d / "ca.cnf").exists():
            (d / "ca.cnf").write_text(CA_CNF)
            (d / "index.txt").write_text("")
            (d / "serial").write_text("1000\n")
        openssl(d, "ca", "-batch", "-config", "ca.cnf", "-cert", str(ca_crt), "-keyfile",
                str(ca_key), "-in", stem + ".csr", "-out", stem + ".pem", "-startdate",
                "20200101000000Z", "-enddate", "20200102000000Z", "-notext")
    else:
        openssl(d, "x509", "-req", "-in", stem + ".csr", "-CA", str(ca_crt), "-CAkey",
                str(ca_key), "-CAcreateserial", "-out", stem + ".pem", "-days", "2",
                "-copy_extensions", "copy")
