//! The class design: each of the 100 classes gets an audio and a visual signature.
//!
//! Structure (the same for every seed; the seed only drives per-clip variation):
//! * **Supercategory traits** shared by its 20 classes — audio: a timbre family and a
//!   frequency register; visual: a colour family (hue range), a texture and a motion speed.
//!   So the 5-way Dom-IL target is visible in both modalities.
//! * **Class traits** inside a supercategory — audio: pitch level (4, a major third apart)
//!   x rhythm level (4 pulse rates, with more harmonics for faster rhythms); visual:
//!   shape (disc, square, triangle, ring) x colour shade (4 hue offsets inside the family).
//! * **Complementary confusions**: within each supercategory, classes 16..19 share the audio
//!   code of classes 0..3 (same sound, different look) and classes 10..15 share the visual
//!   code of classes 4..9 (same look, different sound). Audio then separates at most 16 of
//!   20 classes and vision 14 of 20; both together separate all 20.
//! * **Audio is the stronger modality**: fewer audio collisions, and colour shades one step
//!   apart overlap under the per-clip hue jitter, while pitch levels do not.
use serde::Serialize;

use mmcl_data::classes::{class_table, Supercategory};

/// Supercategory-level timbre family of the audio.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Timbre {
    /// animals: high, frequency-modulated chirps with few harmonics.
    Chirp,
    /// music: sustained harmonic notes with slight vibrato.
    Harmonic,
    /// people: low voiced tones with many harmonics, syllable-rate pulses, breath noise.
    Voice,
    /// sports: short percussive hits with broadband noise bursts.
    Impact,
    /// vehicle: low engine drone, dense harmonics, strong broadband noise.
    Engine,
}

/// Visual object shape (class level).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    Disc,
    Square,
    Triangle,
    Ring,
}

/// Visual texture on the object (supercategory level).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Texture {
    Spots,
    Stripes,
    Solid,
    Checker,
    Gradient,
}

/// How a class sounds (before per-clip variation).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AudioSignature {
    /// Audio code within the supercategory (0..16); equal codes sound the same.
    pub code: u8,
    pub timbre: Timbre,
    /// Fundamental frequency (Hz).
    pub f0: f32,
    /// Number of harmonic partials (those above 0.45 x sample rate are dropped).
    pub harmonics: u32,
    /// Amplitude ratio between successive harmonics.
    pub harmonic_decay: f32,
    /// Relative depth of the frequency modulation (vibrato or chirp).
    pub fm_depth: f32,
    /// Frequency-modulation rate (Hz).
    pub fm_rate: f32,
    /// Sound events per second.
    pub pulse_rate: f32,
    /// Fraction of each event period that sounds.
    pub duty: f32,
    /// Centre (Hz) of the band-pass noise component.
    pub noise_center: f32,
    /// Quality factor of the noise band.
    pub noise_q: f32,
    /// RMS of the noise component relative to the tone.
    pub noise_level: f32,
}

/// How a class looks (before per-clip variation).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VisualSignature {
    /// Visual code within the supercategory (0..14); equal codes look the same.
    pub code: u8,
    pub shape: Shape,
    /// Object hue (degrees).
    pub hue: f32,
    pub saturation: f32,
    pub texture: Texture,
    /// Object speed in frame widths per second.
    pub speed: f32,
    /// Object radius as a fraction of the frame size.
    pub radius: f32,
}

/// Everything about one class.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassSignature {
    pub label: u32,
    pub name: String,
    #[serde(serialize_with = "supercategory_name")]
    pub supercategory: Supercategory,
    pub audio: AudioSignature,
    pub visual: VisualSignature,
    /// Classes that sound the same (visually distinct).
    pub audio_confusable_with: Vec<u32>,
    /// Classes that look the same (audibly distinct).
    pub visual_confusable_with: Vec<u32>,
}

fn supercategory_name<S: serde::Serializer>(sc: &Supercategory, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(sc.name())
}

/// Classes per supercategory.
const PER_SUPER: u32 = 20;

/// Audio code of within-supercategory class `k`: 16..19 reuse 0..3.
fn audio_code(k: u32) -> u32 {
    if k >= 16 {
        k - 16
    } else {
        k
    }
}

/// Visual code of within-supercategory class `k` (dense, 0..14): 10..15 reuse the codes of
/// 4..9, and 16..19 take the free codes 10..13.
fn visual_code(k: u32) -> u32 {
    if k >= 10 {
        k - 6
    } else {
        k
    }
}

/// Supercategory-level audio traits: timbre, lowest f0, base harmonics, harmonic decay,
/// FM depth and rate, the 4 pulse rates, duty, noise centre, Q and level.
struct SuperAudio {
    timbre: Timbre,
    f0_low: f32,
    harmonics: u32,
    decay: f32,
    fm_depth: f32,
    fm_rate: f32,
    pulse_rates: [f32; 4],
    duty: f32,
    noise_center: f32,
    noise_q: f32,
    noise_level: f32,
}

fn super_audio(sc: Supercategory) -> SuperAudio {
    match sc {
        Supercategory::Animals => SuperAudio {
            timbre: Timbre::Chirp,
            f0_low: 700.0,
            harmonics: 2,
            decay: 0.35,
            fm_depth: 0.12,
            fm_rate: 11.0,
            pulse_rates: [1.5, 2.5, 3.5, 5.0],
            duty: 0.4,
            noise_center: 3000.0,
            noise_q: 2.0,
            noise_level: 0.05,
        },
        Supercategory::Music => SuperAudio {
            timbre: Timbre::Harmonic,
            f0_low: 196.0,
            harmonics: 4,
            decay: 0.7,
            fm_depth: 0.006,
            fm_rate: 5.0,
            pulse_rates: [1.0, 1.5, 2.5, 4.0],
            duty: 0.8,
            noise_center: 2000.0,
            noise_q: 1.0,
            noise_level: 0.02,
        },
        Supercategory::People => SuperAudio {
            timbre: Timbre::Voice,
            f0_low: 110.0,
            harmonics: 10,
            decay: 0.8,
            fm_depth: 0.03,
            fm_rate: 4.0,
            pulse_rates: [2.0, 3.0, 4.5, 6.0],
            duty: 0.6,
            noise_center: 1500.0,
            noise_q: 1.0,
            noise_level: 0.12,
        },
        Supercategory::Sports => SuperAudio {
            timbre: Timbre::Impact,
            f0_low: 350.0,
            harmonics: 3,
            decay: 0.5,
            fm_depth: 0.0,
            fm_rate: 0.0,
            pulse_rates: [1.0, 2.0, 3.0, 4.5],
            duty: 0.12,
            noise_center: 1800.0,
            noise_q: 1.5,
            noise_level: 0.6,
        },
        Supercategory::Vehicle => SuperAudio {
            timbre: Timbre::Engine,
            f0_low: 60.0,
            harmonics: 14,
            decay: 0.85,
            fm_depth: 0.02,
            fm_rate: 0.5,
            pulse_rates: [0.5, 1.0, 2.0, 4.0],
            duty: 0.9,
            noise_center: 600.0,
            noise_q: 0.7,
            noise_level: 0.45,
        },
    }
}

/// Pitch levels are a major third (x1.26) apart; per-clip jitter stays within +-3 %.
const PITCH_STEP: f32 = 1.26;

fn audio_signature(sc: Supercategory, k: u32) -> AudioSignature {
    let sa = super_audio(sc);
    let code = audio_code(k);
    let (pitch, rhythm) = (code % 4, code / 4);
    AudioSignature {
        code: code as u8,
        timbre: sa.timbre,
        f0: sa.f0_low * PITCH_STEP.powi(pitch as i32),
        harmonics: sa.harmonics + rhythm,
        harmonic_decay: sa.decay,
        fm_depth: sa.fm_depth,
        fm_rate: sa.fm_rate,
        pulse_rate: sa.pulse_rates[rhythm as usize],
        duty: sa.duty,
        // The noise band moves with the rhythm level too, a second cue for the same code.
        noise_center: sa.noise_center * (1.0 + 0.15 * rhythm as f32),
        noise_q: sa.noise_q,
        noise_level: sa.noise_level,
    }
}

/// Supercategory colour family (hue centre, degrees), texture and speed.
fn super_visual(sc: Supercategory) -> (f32, Texture, f32) {
    match sc {
        Supercategory::Animals => (35.0, Texture::Spots, 0.20),
        Supercategory::Music => (280.0, Texture::Stripes, 0.05),
        Supercategory::People => (345.0, Texture::Solid, 0.08),
        Supercategory::Sports => (120.0, Texture::Checker, 0.15),
        Supercategory::Vehicle => (210.0, Texture::Gradient, 0.25),
    }
}

/// Shade offsets inside a colour family (degrees); neighbours are 14 degrees apart, less
/// than twice the per-clip hue jitter, so neighbouring shades are sometimes confused.
const SHADE_OFFSETS: [f32; 4] = [-21.0, -7.0, 7.0, 21.0];

fn visual_signature(sc: Supercategory, k: u32) -> VisualSignature {
    let (hue_center, texture, speed) = super_visual(sc);
    let code = visual_code(k);
    let (shape, shade) = (code % 4, code / 4);
    VisualSignature {
        code: code as u8,
        shape: [Shape::Disc, Shape::Square, Shape::Triangle, Shape::Ring][shape as usize],
        hue: (hue_center + SHADE_OFFSETS[shade as usize]).rem_euclid(360.0),
        saturation: 0.75,
        texture,
        speed,
        radius: 0.22,
    }
}

/// The signature of class `label` (0..99). Panics if `label >= 100`.
pub fn class_signature(label: u32) -> ClassSignature {
    let table = class_table();
    let class = table.class(label);
    let sc = class.supercategory;
    let first = sc.label() * PER_SUPER;
    let k = label - first;
    let peers = |code: fn(u32) -> u32| -> Vec<u32> {
        (0..PER_SUPER)
            .filter(|&j| j != k && code(j) == code(k))
            .map(|j| first + j)
            .collect()
    };
    ClassSignature {
        label,
        name: class.name.clone(),
        supercategory: sc,
        audio: audio_signature(sc, k),
        visual: visual_signature(sc, k),
        audio_confusable_with: peers(audio_code),
        visual_confusable_with: peers(visual_code),
    }
}

/// All 100 class signatures in label order.
pub fn all_signatures() -> Vec<ClassSignature> {
    (0..crate::NUM_CLASSES as u32)
        .map(class_signature)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_complementary() {
        let all = all_signatures();
        assert_eq!(all.len(), 100);
        for a in &all {
            // Nobody is confusable in both modalities with the same class.
            for b in &a.audio_confusable_with {
                assert!(!a.visual_confusable_with.contains(b));
                assert_eq!(all[*b as usize].audio, a.audio);
                assert_ne!(all[*b as usize].visual, a.visual);
            }
            for b in &a.visual_confusable_with {
                assert_eq!(all[*b as usize].visual, a.visual);
                assert_ne!(all[*b as usize].audio, a.audio);
            }
        }
        // Distinct codes per supercategory: 16 audio, 14 visual; pairs of (audio, visual) unique.
        for s in 0..5 {
            let cls = &all[s * 20..(s + 1) * 20];
            let audio: std::collections::HashSet<_> = cls.iter().map(|c| c.audio.code).collect();
            let visual: std::collections::HashSet<_> = cls.iter().map(|c| c.visual.code).collect();
            let both: std::collections::HashSet<_> =
                cls.iter().map(|c| (c.audio.code, c.visual.code)).collect();
            assert_eq!((audio.len(), visual.len(), both.len()), (16, 14, 20));
        }
        assert_eq!(all[16].audio_confusable_with, vec![0]);
        assert_eq!(all[30].visual_confusable_with, vec![24]);
    }
}
