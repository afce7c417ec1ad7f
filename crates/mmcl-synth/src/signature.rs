//! The class design: each of the 100 classes gets an audio and a visual signature.
//!
//! Structure (the same for every seed; the seed only drives per-clip variation):
//! * **Trait families**: 5 families of shared traits, one "native" to each supercategory —
//!   audio: a timbre family and a frequency register; visual: a colour family (hue range),
//!   a texture and a motion speed. A family and a within-family code (below) make one of
//!   100 *prototypes*; every class renders one prototype, and every prototype is used once.
//! * **Supercategories only partly share their family** (so Dom-IL is informative): the
//!   class with within-supercategory index `k` in supercategory `s` renders family
//!   [`family_of`]`(s, k)`; for each `k` this is a fixed permutation of the 5
//!   supercategories that keeps 2 or 3 of them (they carry their own family) and moves the
//!   others. So half the classes (10 of each supercategory's 20, 10 of each Dom task's 20)
//!   carry their supercategory's family and the rest another supercategory's. The
//!   supercategory of an unseen subclass is then only partly predictable from its family
//!   (50 % vs 12.5 % for each other supercategory), and the family -> supercategory mapping
//!   changes from subclass to subclass, so from Dom task to Dom task: the subclass ->
//!   supercategory mapping must be learnt from each subclass's own (family, code) and
//!   remembered, and a model trained sequentially forgets the earlier tasks' mappings, as
//!   on VGGSound, where later subclasses look and sound unlike earlier ones. When every
//!   class carried its supercategory's traits, the 5-way target was learnt in task 1 and
//!   transferred to every new subclass: Dom accuracy was ~99 % for every method (JOINT,
//!   SGD, ER, SAMM) with no forgetting, where the paper has JOINT 62 %, SGD 27 %.
//! * **Class traits** inside a family — audio: pitch level (4, a major third apart) x
//!   rhythm level (4 pulse rates, with more harmonics for faster rhythms); visual: shape
//!   (disc, square, triangle, ring) x colour shade (4 hue offsets inside the family).
//! * **Complementary confusions**: within each family, codes 16..19 share the audio code of
//!   0..3 (same sound, different look) and codes 10..15 share the visual code of 4..9 (same
//!   look, different sound). Audio then separates at most 80 of the 100 classes and vision
//!   70; both together separate all 100. The set of 100 prototypes and their confusion
//!   pairs are the same as when every class carried its supercategory's family; only which
//!   class (so which supercategory) renders which prototype changed, and a confusable pair
//!   may now span two supercategories.
//! * **Audio is the stronger modality**: fewer audio collisions, and colour shades one step
//!   apart overlap under the per-clip hue jitter, while pitch levels do not.
use serde::Serialize;

use mmcl_data::classes::{class_table, Supercategory};

/// Timbre of the audio (family level; each family is named after the supercategory it is
/// native to).
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

/// Visual texture on the object (family level).
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
    /// Within-supercategory index `k` (0..20, alphabetical inside the supercategory): the
    /// design slot the class fills, see [`family_of`].
    pub slot: u32,
    #[serde(serialize_with = "supercategory_name")]
    pub supercategory: Supercategory,
    /// The trait family the class renders (named after the supercategory it is native to);
    /// equal to `supercategory` for half the classes, see the module docs.
    #[serde(serialize_with = "supercategory_name")]
    pub family: Supercategory,
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

/// The 10 pairs of the 5 supercategories, each supercategory in 4 of them.
const PAIRS: [[u32; 2]; 10] = [
    [0, 1],
    [2, 3],
    [4, 0],
    [1, 2],
    [3, 4],
    [0, 2],
    [1, 3],
    [2, 4],
    [3, 0],
    [4, 1],
];

/// The trait family (a supercategory label) of within-supercategory class `k` of
/// supercategory `s`. For each `k` a permutation of the 5 supercategories: even `k` keep
/// the pair `PAIRS[k / 2]` and rotate the other 3 (forwards or backwards, alternating);
/// odd `k` swap the pair `PAIRS[(k / 2 + 5) % 10]` and keep the other 3. So every
/// supercategory keeps its own family in 10 of its 20 slots, every 4 consecutive slots
/// (one Dom task) hold 10 of 20 classes with their own family, and the family ->
/// supercategory mapping differs from slot to slot.
pub fn family_of(s: u32, k: u32) -> u32 {
    let idx = (k / 2) as usize;
    if k % 2 == 1 {
        let [a, b] = PAIRS[(idx + 5) % 10];
        return if s == a {
            b
        } else if s == b {
            a
        } else {
            s
        };
    }
    let keep = PAIRS[idx];
    if keep.contains(&s) {
        return s;
    }
    let moved: Vec<u32> = (0..5).filter(|x| !keep.contains(x)).collect();
    let i = moved.iter().position(|&x| x == s).expect("s < 5");
    let step = if idx % 2 == 0 { 1 } else { 2 };
    moved[(i + step) % 3]
}

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

/// Family-level audio traits (of the family named after supercategory `sc`): timbre,
/// lowest f0, base harmonics, harmonic decay, FM depth and rate, the 4 pulse rates, duty,
/// noise centre, Q and level.
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

/// The sound of prototype (family, code slot `k`).
fn audio_signature(family: Supercategory, k: u32) -> AudioSignature {
    let sa = super_audio(family);
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

/// Family-level visual traits (of the family named after `sc`): colour family (hue centre,
/// degrees), texture and speed.
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

/// The look of prototype (family, code slot `k`).
fn visual_signature(family: Supercategory, k: u32) -> VisualSignature {
    let (hue_center, texture, speed) = super_visual(family);
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

/// The design slot `(supercategory label, within-supercategory index)` of class `label`.
/// Class labels are alphabetical over all 100 names (the reference's numbering), so the
/// slot is the class's rank among its supercategory's classes, not `label % 20`.
pub fn slot_of(label: u32) -> (u32, u32) {
    let table = class_table();
    let sc = table.class(label).supercategory;
    let k = table
        .in_supercategory(sc)
        .position(|c| c.index == label)
        .expect("a class is in its own supercategory");
    (sc.label(), k as u32)
}

/// The class label filling design slot `k` of supercategory `s` (inverse of [`slot_of`]).
pub fn label_of(s: u32, k: u32) -> u32 {
    let sc = Supercategory::from_label(s).expect("supercategory label < 5");
    class_table()
        .in_supercategory(sc)
        .nth(k as usize)
        .expect("slot < 20")
        .index
}

/// The signature of class `label` (0..99). Panics if `label >= 100`.
pub fn class_signature(label: u32) -> ClassSignature {
    let table = class_table();
    let class = table.class(label);
    let sc = class.supercategory;
    let (_, k) = slot_of(label);
    let family_label = family_of(sc.label(), k);
    let family = Supercategory::from_label(family_label).expect("family < 5");
    // Confusable classes render a prototype of the same family with an equal code; they
    // may belong to another supercategory.
    let peers = |code: fn(u32) -> u32| -> Vec<u32> {
        let mut v: Vec<u32> = (0..5u32)
            .flat_map(|s2| (0..PER_SUPER).map(move |j| (s2, j)))
            .filter(|&(s2, j)| {
                (s2, j) != (sc.label(), k) && family_of(s2, j) == family_label && code(j) == code(k)
            })
            .map(|(s2, j)| label_of(s2, j))
            .collect();
        v.sort_unstable();
        v
    };
    ClassSignature {
        label,
        name: class.name.clone(),
        slot: k,
        supercategory: sc,
        family,
        audio: audio_signature(family, k),
        visual: visual_signature(family, k),
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
    use std::collections::HashSet;

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
        // Distinct codes per trait family: 16 audio, 14 visual; (audio, visual) pairs unique.
        for f in Supercategory::ALL {
            let cls: Vec<_> = all.iter().filter(|c| c.family == f).collect();
            let audio: HashSet<_> = cls.iter().map(|c| c.audio.code).collect();
            let visual: HashSet<_> = cls.iter().map(|c| c.visual.code).collect();
            let both: HashSet<_> = cls.iter().map(|c| (c.audio.code, c.visual.code)).collect();
            assert_eq!(
                (cls.len(), audio.len(), visual.len(), both.len()),
                (20, 16, 14, 20)
            );
        }
        // Over all classes: 80 distinct sounds, 70 looks, 100 distinct (sound, look) pairs.
        let distinct =
            |f: &dyn Fn(&ClassSignature) -> String| all.iter().map(f).collect::<HashSet<_>>().len();
        assert_eq!(distinct(&|c| format!("{:?}", c.audio)), 80);
        assert_eq!(distinct(&|c| format!("{:?}", c.visual)), 70);
        assert_eq!(distinct(&|c| format!("{:?}{:?}", c.audio, c.visual)), 100);
        // Slot (animals, 18) has family sports and sounds like slot (sports, 2), its own
        // family: confusions may cross supercategories.
        let (a18, s2, a16) = (label_of(0, 18), label_of(3, 2), label_of(0, 16));
        assert_eq!(all[a18 as usize].family, Supercategory::Sports);
        assert_eq!(all[s2 as usize].family, Supercategory::Sports);
        assert_eq!(all[a18 as usize].audio_confusable_with, vec![s2]);
        assert_eq!(all[s2 as usize].audio_confusable_with, vec![a18]);
        assert_eq!(all[a16 as usize].family, Supercategory::Animals);
        for c in &all {
            assert_eq!(label_of(c.supercategory.label(), c.slot), c.label);
        }
    }

    /// The Dom-IL property: 50 % of the classes of every supercategory and of every Dom task
    /// (4 subclasses per supercategory) carry their supercategory's family, each slot's
    /// family assignment is a permutation, and the family -> supercategory mapping is not
    /// the same in every task (so a sequentially trained model has something to forget).
    #[test]
    fn supercategories_only_partly_share_their_family() {
        let all = all_signatures();
        let native =
            |cls: &[&ClassSignature]| cls.iter().filter(|c| c.family == c.supercategory).count();
        assert_eq!(native(&all.iter().collect::<Vec<_>>()), 50);
        for sc in Supercategory::ALL {
            let cls: Vec<_> = all.iter().filter(|c| c.supercategory == sc).collect();
            assert_eq!(cls.len(), 20);
            assert_eq!(native(&cls), 10, "supercategory {sc}");
        }
        let mut task_maps = HashSet::new();
        for t in 0..5u32 {
            let cls: Vec<_> = all.iter().filter(|c| c.slot / 4 == t).collect();
            assert_eq!(native(&cls), 10, "task {t}");
            let map: Vec<_> = cls
                .iter()
                .map(|c| (c.slot, c.family, c.supercategory))
                .map(|(k, f, s)| (k % 4, f.label(), s.label()))
                .collect();
            task_maps.insert(map);
        }
        assert_eq!(task_maps.len(), 5, "every task maps families differently");
        for k in 0..20 {
            let fams: HashSet<_> = (0..5).map(|s| family_of(s, k)).collect();
            assert_eq!(fams.len(), 5, "slot {k} is a permutation");
            let kept = (0..5).filter(|&s| family_of(s, k) == s).count();
            assert_eq!(kept, if k % 2 == 0 { 2 } else { 3 }, "slot {k}");
        }
    }
}
