"""The civil servant's phone (docs/wallet.md): the same credential as the card, held in a
wallet app as an SD-JWT VC, issued by OpenID4VCI and shown to an official by OpenID4VP, and
the holder's own page.

- ``offers``: credential offers with the pre-authorized code grant, and the token endpoint;
- ``nonces``: single-use nonces (key proofs, the holder page's proofs of possession);
- ``phone_credential``: issuing the phone credential (kind ``phone``) at the credential endpoint;
- ``presentations``: an official's presentation requests and their answers;
- ``verifier_key``: the key and certificate that sign presentation requests (``x509_hash``);
- ``holder``: the holder's own page: sessions opened by proof of possession, the record;
- ``corrections``: the holder's reports of errors in the record, and the registrars' queue;
- ``use_cases``: ``Wallet``, the feature's entry point for the composition root.
"""
