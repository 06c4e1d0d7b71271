"""The bundled practice shop: a seller back office the robots work against by default.

It is a stand-alone web application. It imports nothing from ``robots``; the robots reach it
only through its pages, exactly as they would reach a real shop.
"""
