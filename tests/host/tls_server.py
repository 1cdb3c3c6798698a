"""A TLS SIP server thread for the TLS tests: answers every request 200 with the firmware's
own message code, and records the requests and the SNI names it was asked for."""

import socket
import ssl
import sys
import threading

from sip_proc import FIRMWARE, free_port


class TlsServer(threading.Thread):
    def __init__(self, cert, key, ip, phone_ip):
        super().__init__(daemon=True)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(cert), str(key))
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.port = free_port(ip)
        self.sock.bind((ip, self.port))
        self.sock.listen(4)
        self.sock.settimeout(0.2)
        self.phone_ip = phone_ip
        self.stop = False
        self.got = []  # parsed requests
        self.extra = None  # headers added to every answer (a long one: several reads)
        self.sni = []

        def sni_cb(s, name, ctx):
            self.sni.append(name)

        self.ctx.sni_callback = sni_cb

    def run(self):
        sys.path.insert(0, FIRMWARE)
        from sipua.sip.msg import parse
        from sipua.sip.strans import response
        from sipua.sip.stream import NEED_MORE, frame

        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            try:
                c.settimeout(5)
                s = self.ctx.wrap_socket(c, server_side=True)
                buf = bytearray()
                while True:
                    data = s.recv(4096)
                    if not data:
                        break
                    buf.extend(data)
                    while True:  # every whole message read so far
                        n = frame(buf, len(buf))
                        if n == NEED_MORE:
                            break
                        m = parse(bytes(buf[:n]), False)
                        del buf[:n]
                        if not m.method:
                            continue
                        m.src = (self.phone_ip, 0)
                        self.got.append(m)
                        s.sendall(response(m, 200, "OK", "tls1", self.extra))
            except (OSError, ssl.SSLError):
                pass
            finally:
                c.close()

    def close(self):
        self.stop = True
        self.join(2)
        self.sock.close()
