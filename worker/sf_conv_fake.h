/*  =========================================================================
    sf_conv_fake - the fake converter (unit tests only, where libvirt's
    test:// domains have no disk files): it waits 300 ms, cancellably, so
    that tests can see a job run, then writes a real, empty qcow2 of the
    disk's virtual size.

    No production code includes this header. A test injects it:
        sf_conv_t *conv = sf_conv_new_with (&sf_conv_fake_driver);
    =========================================================================
*/
#ifndef SF_CONV_FAKE_H_INCLUDED
#define SF_CONV_FAKE_H_INCLUDED

extern const sf_conv_driver_t sf_conv_fake_driver;

#endif
